import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The pure parts of the change report: the content digest that lets a loader skip an identical re-read, the
/// columns it compares, and the load message fields it trusts.
@Suite struct ChangeReportTests {
    private func digest(_ rows: [String]) -> String {
        var d = RowDigest()
        let bytes = Array(rows.map { $0 + "\n" }.joined().utf8)
        bytes.withUnsafeBytes { d.add($0) }
        return d.text
    }

    @Test func theDigestIgnoresChannelRetrievalTimeAndOrder() {
        let a = digest(["us\t2026-11-20 04:30:00\tCA1\tcompleted\t-0.0100", "us\t2026-11-20 04:30:00\tCA2\tqueued\t\\N"])
        #expect(a == digest(["eu\t2026-11-21 04:30:07\tCA2\tqueued\t\\N", "eu\t2026-11-21 04:30:07\tCA1\tcompleted\t-0.0100"]))
        #expect(a.hasPrefix("2:"), "the row count leads: \(a)")
    }

    @Test func theDigestSeesEveryOtherByteAndEveryRow() {
        let base = ["us\tt\tCA1\tcompleted\t-0.0100", "us\tt\tCA2\tqueued\t\\N"]
        let a = digest(base)
        #expect(a != digest(["us\tt\tCA1\tcompleted\t-0.0101", base[1]]), "a changed price")
        #expect(a != digest(["us\tt\tCA1\tcompleted\t-0.0100", "us\tt\tCA2\tqueued\t"]), "NULL against empty")
        #expect(a != digest(base + [base[1]]), "a duplicated row")
        #expect(a != digest(["us\tt\tCA1\tcompleted\t-0.0100\tx", base[1]]), "an extra field")
        // Two rows that swap a field's content between them do not cancel out.
        #expect(digest(["c\tt\ta\t1", "c\tt\tb\t2"]) != digest(["c\tt\ta\t2", "c\tt\tb\t1"]))
    }

    @Test func theDigestIsTheSameFedPageByPage() {
        let rows = (0..<500).map { "us\t2026-11-20 04:30:00\tSM\($0)\tdelivered\t\($0 % 7 == 0 ? "\\N" : "-0.0075")" }
        var paged = RowDigest()
        for page in stride(from: 0, to: rows.count, by: 37) {
            let bytes = Array(rows[page..<min(page + 37, rows.count)].map { $0 + "\n" }.joined().utf8)
            bytes.withUnsafeBytes { paged.add($0) }
        }
        #expect(paged.text == digest(rows.reversed()))
    }

    @Test func theDigestOfAStagedWriterMatchesItsRows() throws {
        var tsv = TSVWriter(capacity: 64)
        tsv.text("u\ts")  // an escaped TAB in the channel is not a field boundary
        tsv.text("2026-11-20 04:30:00")
        tsv.text("tab\there")
        tsv.null()
        tsv.endRow()
        var direct = RowDigest()
        tsv.withUnsafeBytes { direct.add($0) }
        // The staged format escapes with a backslash before the byte itself (Redshift's ESCAPE).
        #expect(direct.text == digest(["eu\tlater\ttab\\\there\t\\N"]))
        #expect(direct.text != digest(["eu\tlater\ttab\t\\N"]))
    }

    @Test func everyChangeColumnIsAColumnOfItsTable() throws {
        for resource in Resource.allCases where !resource.changeColumns.isEmpty {
            let table = try #require(WarehouseSchema.table(resource.table))
            let names = Set(table.columns.map(\.name))
            for column in resource.changeColumns { #expect(names.contains(column), "\(resource.table).\(column)") }
            #expect(names.contains("sid"), "\(resource.table) is compared by sid")
        }
        #expect(Resource.allCases.filter { $0.appendOnly }.allSatisfy { $0.changeColumns.isEmpty })
    }

    @Test func isoTimesAreCheckedForShapeAndRange() {
        #expect(UTCTime.isISO(UTCTime.iso(Date())))
        #expect(UTCTime.isISO("2026-11-20T04:30:00Z") && UTCTime.isISO("2026-11-20T04:30:00.123Z"))
        for bad in [
            "2026-11-20 04:30:00", "2026-02-30T04:30:00Z", "2026-11-20T24:00:00Z", "2026-11-20T04:30:00.Z",
            "2026-11-20T04:30:00+01:00", "2026-11-20T04:3a:00Z", "'; DROP TABLE x; --",
        ] {
            #expect(!UTCTime.isISO(bad), "\(bad)")
        }
    }

    @Test func loadMessagesOutsideTheLedgersBoundsAreRefusedByName() throws {
        let good = LoadMessage(
            loadID: "us/calls/2026-11-20@2026-11-21T04:30:00.000Z", jobID: "us/calls/2026-11-20", channel: "us",
            resource: "calls", table: "twilio_calls", partition: "2026-11-20", objects: [],
            extractedAt: "2026-11-21T04:30:00.000Z")
        func encoded(_ change: (inout LoadMessage) -> Void) throws -> [UInt8] {
            var m = good
            change(&m)
            return Array(try JSONEncoder().encode(m))
        }
        #expect(
            try MessageCodec.decodeLoad(
                encoded {
                    $0.contentDigest = "2a:ff01"
                    $0.runID = "20261121T043000000Z"
                }
            ).contentDigest == "2a:ff01")
        let cases: [(String, (inout LoadMessage) -> Void)] = [
            ("partition", { $0.partition = "2026-13-01" }),
            ("extracted_at", { $0.extractedAt = "yesterday" }),
            ("channel of 600 bytes", { $0.channel = String(repeating: "c", count: 600) }),
            ("run_id", { $0.runID = String(repeating: "r", count: 65) }),
            ("content_digest is not", { $0.contentDigest = "2a:zz" }),
        ]
        for (named, change) in cases {
            let error = try #require(throws: LoadError.self) { try MessageCodec.decodeLoad(encoded(change)) }
            #expect(error.errorClass == .permanent && error.message.contains(named), "\(error.message)")
        }
    }
}
