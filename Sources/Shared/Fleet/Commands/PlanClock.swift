package import Foundation
import HuskimoConnectors
package import HuskimoCore

/// The planner's clock, checked before its run id goes out. A run id is the planner's time, and every ledger decision
/// orders by it: a planner running ahead mints run ids that every worker parks as "from the future" (and, had they
/// been let through, would make every later reload of their partitions look older); one running far behind mints run
/// ids older than the last night's, whose loads are skipped as older. So the planner asks another host for the time
/// — S3's `Date` header, which every S3 answer carries, even a refusal — and refuses to plan when the two differ by
/// more than the tolerance the loaders allow (``LoadMessageCheck/clockTolerance``). When nothing answers, it plans
/// and warns: a plan is not held hostage to S3 being reachable from the planner's host.
package struct PlanClock: Sendable {
    package var now: @Sendable () -> Date
    /// Another host's time and its name, nil when none answered.
    package var reference: @Sendable () -> (source: String, date: Date)?

    package init(
        now: @escaping @Sendable () -> Date = { Date() }, reference: @escaping @Sendable () -> (source: String, date: Date)?
    ) {
        self.now = now
        self.reference = reference
    }

    /// This host's clock, checked against the `Date` header of the configured S3 endpoint (one HEAD of the bucket,
    /// 5 s at most).
    package static func system(_ s3: S3Config) -> PlanClock {
        PlanClock(reference: {
            var request = S3Client(s3.s3Endpoint).request(.HEAD, key: nil, timeout: 5)
            request.maxBodyBytes = 0
            guard let response = try? HTTPClient().execute(request), let header = response.head.header("date"),
                let date = PlanClock.httpDate(header)
            else { return nil }
            return ("S3 (\(s3.s3Endpoint.endpoint))", date)
        })
    }

    /// An HTTP `Date` header (`Sun, 06 Dec 2026 14:55:00 GMT`, RFC 9110's IMF-fixdate).
    static func httpDate(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { RFC2822.seconds($0, 0, bytes.count) }.map { Date(timeIntervalSince1970: Double($0)) }
    }

    /// The run id to plan under. - Throws: ``CommandFailure/failed(_:)`` when this clock and the reference differ by
    /// more than `tolerance` seconds.
    package func runID(tolerance: TimeInterval, warn: (String) -> Void) throws -> String {
        let local = now()
        guard let (source, reference) = reference() else {
            warn("cannot check this host's clock (no time from S3): planning on it unchecked")
            return UTCTime.compact(local)
        }
        // The header has whole seconds and the answer took a moment: a second of slack beyond the tolerance.
        let skew = local.timeIntervalSince(reference)
        guard abs(skew) <= tolerance + 1 else {
            throw CommandFailure.failed(
                "this host's clock is \(Int(abs(skew).rounded())) s \(skew > 0 ? "ahead of" : "behind") \(source) (at most \(Int(tolerance)) s): "
                    + (skew > 0
                        ? "every worker would park its run's jobs as planned in the future"
                        : "its run ids would be older than earlier runs', and their loads skipped as older")
                    + "; fix the clock (NTP) and plan again")
        }
        return UTCTime.compact(local)
    }
}
