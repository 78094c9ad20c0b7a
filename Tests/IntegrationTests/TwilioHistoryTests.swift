import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// Twilio beyond the list window: three years of an account's messages, the oldest through Bulk Export, paced to the
/// export quota over two planning days, meet the list window's days with no gap and no overlap.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(8)))
struct TwilioHistoryTests {
    static let account = SandboxAccount.defaults.first { $0.sid == SandboxAccount.sid(5) }!

    @Test func threeYearsOfMessagesThroughBulkExportMeetTheListWindow() throws {
        let fleet = try FleetHarness(accounts: [("hist", Self.account)])
        defer { fleet.cleanUp() }
        fleet.twilioOptions["hist"] = "bulkexports_url: \"http://127.0.0.1:\(fleet.server.port)\", bulkexport_poll_s: 0.02"
        try fleet.writeConfig()
        try fleet.applyDDL()
        let today = Day.today
        let (from, to) = (today.adding(days: -3 * 365), today.adding(days: -2))
        let oldestListed = today.adding(days: -TwilioConnector.listWindow)
        let historyDays = oldestListed.ordinal - from.ordinal  // every day before the list window's oldest
        #expect(historyDays > 366, "more history than one day's quota")

        // First planning day: the list window's days, and the newest 366 history days (the quota).
        var (code, output) = try fleet.run(
            "huskimo-planner",
            ["backfill", "--config", fleet.configPath, "--channel", "hist", "--resource", "messages", "--from", "\(from)", "--to", "\(to)"])
        #expect(code == 0, "\(output)")
        #expect(output.contains("366 history days through Bulk Export"), "\(output)")
        #expect(output.contains("history of hist messages: \(historyDays) days not loaded (oldest \(from)); 366 of them fit"), "\(output)")
        try drain(fleet)
        (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(
            output.contains("history of hist messages: \(historyDays - 366) days not loaded (oldest \(from)); 0 of them fit"), "\(output)")

        // The next UTC day (the quota's bookkeeping moved back a day, the sandbox's quota renewed): plan goes on with
        // what is left.
        fleet.api.setFaults(SandboxFaults(bulkExportQuota: 2 * 366))
        let pg = try PostgresConnection(try TestServices.postgres())
        _ = try pg.query(
            "UPDATE \(fleet.id).history_days SET planned_on = $1 WHERE planned_on = $2", ["\(today.adding(days: -1))", "\(today)"])
        try fleet.plan(["--channel", "hist", "--resource", "messages"])
        try drain(fleet)

        // Every day from three years ago to yesterday exactly once; the days either side of the boundary whole.
        let days = (from.ordinal...today.ordinal - 1).map(Day.init(ordinal:))
        try fleet.expectExact(days: days, resources: [.messages])
        for day in [oldestListed.adding(days: -1), oldestListed] {
            let expected = SandboxAPI.expected(Self.account, "messages", day: day)
            let sids = try pg.query(
                "SELECT sid FROM \(fleet.id).twilio_messages WHERE date_sent >= $1::timestamp AND date_sent < $2::timestamp ORDER BY sid",
                ["\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"]
            ).map { $0[0]! }
            #expect(SandboxAPI.checksum(sids) == expected.checksum, "day \(day) (\(sids.count) rows, expected \(expected.count))")
        }
        // What an export does not carry stays NULL; what it carries is there.
        let old = try pg.query(
            "SELECT count(*), count(api_version), count(date_sent) FROM \(fleet.id).twilio_messages WHERE date_sent < $1::timestamp",
            ["\(oldestListed) 00:00:00"])[0]
        #expect(old[1] == "0" && old[0] == old[2] && Int(old[0]!)! > 0, "\(old)")
        let stats = fleet.api.currentStats
        #expect(stats.exportJobsCreated == historyDays, "one export job per history day, none twice")
        #expect(stats.exportDownloadsWithCredentials == 0 && stats.listWindowRefused == 0)
        #expect(stats.exportDaysRefused == 0, "planning kept to the quota")

        // Asked again: nothing left to plan.
        (code, output) = try fleet.run(
            "huskimo-planner",
            ["backfill", "--config", fleet.configPath, "--channel", "hist", "--resource", "messages", "--from", "\(from)", "--to", "\(to)"])
        #expect(code == 0 && output.contains("planned \(to.ordinal - oldestListed.ordinal + 1) jobs for hist: 0 history days"), "\(output)")
    }

    /// Refusals that name what is wrong: a resource without history, a region without Bulk Export.
    @Test func backfillRefusesWhatBulkExportCannotServe() throws {
        let fleet = try FleetHarness(accounts: [("hist", Self.account)])
        defer { fleet.cleanUp() }
        let old = Day.today.adding(days: -500)
        var (code, output) = try fleet.run(
            "huskimo-planner",
            [
                "backfill", "--config", fleet.configPath, "--channel", "hist", "--resource", "recordings", "--from", "\(old)", "--to",
                "\(old)",
            ])
        #expect(code == 2 && output.contains("recordings has no history API"), "\(output)")
        fleet.twilioOptions["hist"] = "region: ie1, edge: dublin"
        try fleet.writeConfig()
        (code, output) = try fleet.run(
            "huskimo-planner", ["backfill", "--config", fleet.configPath, "--channel", "hist", "--from", "\(old)", "--to", "\(old)"])
        #expect(code == 1 && output.contains("Bulk Export is not offered in IE1"), "\(output)")
        (_, output) = try fleet.run("huskimo-planner", ["check", "--config", fleet.configPath, "--channel", "hist"])
        #expect(output.contains("Bulk Export is not offered in IE1"), "check says so: \(output)")
    }

    /// An account whose owner kept 30 days of calls: without `list_window_days` an older day is parked with the key to
    /// set named; with it, planning refuses older days (naming the window) and backfill reads them through Bulk Export,
    /// meeting the days the list still serves with no gap and no overlap.
    @Test func aShortenedListWindowIsNamedAndItsOlderDaysComeThroughBulkExport() throws {
        let fleet = try FleetHarness(accounts: [("short", Self.account)])
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(twilioListWindows: [Self.account.sid: 30]))
        try fleet.applyDDL()
        let today = Day.today
        let old = today.adding(days: -40)
        try fleet.plan(["--channel", "short", "--resource", "calls", "--from", "\(old)", "--to", "\(old)"])
        try drain(fleet)
        let parked = try fleet.parkedJobs()
        #expect(parked.count == 1 && parked.allSatisfy { $0.headers["x-error-class"] == .string("permanent") })
        let message = parked.first?.headers["x-error-message"]?.stringValue ?? ""
        #expect(message.contains("20004") && message.contains("set list_window_days on channel short"), "\(message)")

        fleet.twilioOptions["short"] =
            "list_window_days: 30, bulkexports_url: \"http://127.0.0.1:\(fleet.server.port)\", bulkexport_poll_s: 0.02"
        try fleet.writeConfig()
        var (code, output) = try fleet.run(
            "huskimo-planner",
            ["plan", "--config", fleet.configPath, "--channel", "short", "--resource", "calls", "--from", "\(old)", "--to", "\(old)"])
        #expect(output.contains("older than the 30-day list window"), "\(output)")
        let (from, to) = (today.adding(days: -45), today.adding(days: -25))
        (code, output) = try fleet.run(
            "huskimo-planner",
            ["backfill", "--config", fleet.configPath, "--channel", "short", "--resource", "calls", "--from", "\(from)", "--to", "\(to)"])
        #expect(code == 0, "\(output)")
        #expect(output.contains("15 history days through Bulk Export"), "\(output)")
        let refusedBefore = fleet.api.currentStats.listWindowRefused
        try drain(fleet)
        #expect(fleet.api.currentStats.listWindowRefused == refusedBefore, "no list request beyond the window")
        #expect(fleet.api.currentStats.exportJobsCreated == 15)
        try fleet.expectExact(days: (from.ordinal...to.ordinal).map(Day.init(ordinal:)), resources: [.calls])
    }

    /// An export job still running when the attempt's wait ends goes to the delay queue and is reused by the next
    /// attempt (one export created, not two); a day whose 307 points at another host is parked, naming the host, and
    /// nothing is fetched from there.
    @Test func aRunningExportIsReusedAndARedirectElsewhereIsRefused() throws {
        let fleet = try FleetHarness(accounts: [("hist", Self.account)])
        defer { fleet.cleanUp() }
        fleet.twilioOptions["hist"] =
            "bulkexports_url: \"http://127.0.0.1:\(fleet.server.port)\", bulkexport_poll_s: 0.02, bulkexport_wait_s: 1"
        try fleet.writeConfig()
        try fleet.applyDDL()
        let day = Day.today.adding(days: -500)
        fleet.api.setFaults(SandboxFaults(bulkExportPolls: 12))
        var (code, output) = try fleet.run(
            "huskimo-planner",
            ["backfill", "--config", fleet.configPath, "--channel", "hist", "--resource", "calls", "--from", "\(day)", "--to", "\(day)"])
        #expect(code == 0, "\(output)")
        let log = try drain(fleet)
        #expect(fleet.api.currentStats.exportJobsCreated == 1, "the running export was reused")
        try fleet.expectExact(days: [day], resources: [.calls])
        #expect(log.contains("is still RUNNING after") && log.contains("the job is reused"), "\(log.suffix(2000))")

        let other = day.adding(days: -1)
        fleet.api.setFaults(SandboxFaults(bulkExportRedirect: "http://evil.example:1/file.json.gz?X-Amz-Signature=s3cr3t"))
        (code, output) = try fleet.run(
            "huskimo-planner",
            [
                "backfill", "--config", fleet.configPath, "--channel", "hist", "--resource", "calls", "--from", "\(other)", "--to",
                "\(other)",
            ])
        try drain(fleet)
        (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(code == 1 && output.contains("evil.example") && output.contains("neither the API's host"), "\(output)")
        #expect(!output.contains("s3cr3t"), "the signature stays out of errors")
    }

    /// Daily usage of an account with subaccounts: its own figures only (IncludeSubaccounts=false), pages of at most
    /// 100, a partition per day; its billed call and message counts agree with the rows loaded for the same days.
    @Test func usageRecordsLoadPerDayAndAgreeWithTheRows() throws {
        let parent = SandboxAccount.defaults[0]
        let fleet = try FleetHarness(accounts: [("us", parent)])
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        let days = (5...9).map { Day.today.adding(days: -$0) }
        try fleet.plan([
            "--from", "\(days.last!)", "--to", "\(days.first!)", "--resource", "usage_records", "--resource", "calls", "--resource",
            "messages",
        ])
        try drain(fleet)
        let pg = try PostgresConnection(try TestServices.postgres())
        let s = fleet.id
        let rows = try pg.query(
            """
            SELECT to_char(u.usage_date, 'YYYY-MM-DD'), u."count",
                   (SELECT count(*) FROM \(s).twilio_calls c WHERE c.status = 'completed' AND c.start_time >= u.usage_date
                        AND c.start_time < u.usage_date + 1)
            FROM \(s).twilio_usage_records u WHERE u.category = 'calls' ORDER BY 1
            """)
        #expect(rows.count == days.count, "\(rows)")
        for row in rows { #expect(row[1] == row[2], "billed calls of \(row[0] ?? "?") against the completed calls loaded: \(row)") }
        let messages = try pg.query(
            """
            SELECT sum("count") FROM \(s).twilio_usage_records WHERE category IN ('sms', 'mms')
            """)[0][0]
        #expect(messages == "\(try fleet.rows("twilio_messages", channel: "us"))", "every sandbox message is billed")
        #expect(try pg.query("SELECT count(DISTINCT account_sid) FROM \(s).twilio_usage_records")[0][0] == "1", "the parent's own figures")
        #expect(fleet.api.currentStats.usagePagesTooLarge == 0 && fleet.api.currentStats.usagePages >= days.count)
    }

    /// A day the lists served short disagrees with the billed usage: it is read again once and is then exact. A day
    /// served short twice stays short and is reported unreconciled (status exits 1, the loader logs it).
    @Test func aDayServedShortIsReadAgainAndThenExactOrReportedUnreconciled() throws {
        let fleet = try FleetHarness(accounts: [("us", SandboxAccount.defaults[1])])
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        // Three days in a row with calls and messages (the sandbox leaves about one day in ten empty).
        let account = SandboxAccount.defaults[1]
        let filled = { (day: Day) in ["calls", "messages"].allSatisfy { SandboxAPI.expected(account, $0, day: day).count > 0 } }
        let newest = (5...40).map { Day.today.adding(days: -$0) }.first { day in (0...2).allSatisfy { filled(day.adding(days: -$0)) } }!
        let days = (0...2).map { newest.adding(days: -$0) }
        let (onceShort, twiceShort) = (days[1], days[2])
        fleet.api.setFaults(SandboxFaults(twilioShortDays: [onceShort.description: 1, twiceShort.description: 2]))
        try fleet.plan([
            "--from", "\(days.last!)", "--to", "\(days.first!)", "--resource", "usage_records", "--resource", "calls", "--resource",
            "messages",
        ])
        try drain(fleet)
        var (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        for day in [onceShort, twiceShort] {
            #expect(output.contains("/ us / \(day) calls:") && output.contains("/ us / \(day) messages:"), "\(output)")
        }
        #expect(output.contains("being read again"), "\(output)")
        try drain(fleet)  // the re-reads the loader published

        (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(code == 1, "unreconciled days make status fail: \(output)")
        #expect(output.contains("/ us / \(twiceShort) calls:") && output.contains("UNRECONCILED after a re-read"), "\(output)")
        #expect(!output.contains("/ us / \(onceShort) "), "the day read again is exact: \(output)")
        let pg = try PostgresConnection(try TestServices.postgres())
        let verdicts = try pg.query(
            "SELECT day_key, kind, state, rereads, rows_billable, billed FROM \(fleet.id).reconciliation ORDER BY 1, 2")
        #expect(verdicts.count == 6, "\(verdicts)")
        for v in verdicts {
            let day = Day(v[0]!)!
            let expected = day == twiceShort ? "unreconciled" : "reconciled"
            #expect(v[2] == expected && v[3] == (day == days[0] ? "0" : "1"), "\(v)")
            if day == twiceShort { #expect(Int(v[4]!)! == Int(v[5]!)! - 1, "one billed record short: \(v)") } else { #expect(v[4] == v[5]) }
        }
        for resource in ["calls", "messages"] {
            for day in [days[0], onceShort] {
                let table = resource == "calls" ? "twilio_calls" : "twilio_messages"
                let column = resource == "calls" ? "start_time" : "date_sent"
                let n = try pg.query(
                    "SELECT count(*) FROM \(fleet.id).\(table) WHERE \(column) >= $1::timestamp AND \(column) < $2::timestamp",
                    ["\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"])[0][0]
                #expect(n == "\(SandboxAPI.expected(SandboxAccount.defaults[1], resource, day: day).count)", "\(resource) \(day)")
            }
        }
        #expect(fleet.api.currentStats.shortLists == 6, "each list of the once-short day short once, of the other twice")
    }

    /// A day without usage answers 404 (Twilio's way): an empty partition, not an error.
    @Test func aDayWithoutUsageIsAnEmptyPartition() throws {
        let staged = try StagedLoads(bucketPrefix: "huskimo-usage")
        let candidates = [SandboxAccount.defaults[1], SandboxAccount.defaults[2], Self.account].flatMap { account in
            (2...399).map { (account, Day.today.adding(days: -$0)) }
        }
        let (account, day) = try #require(
            candidates.first { account, day in
                ["calls", "messages"].allSatisfy { SandboxAPI.expected(account, $0, day: day).count == 0 }
            }, "a day without calls and messages")
        let load = try staged.extract(account, .usageRecords, day)
        #expect(load.rows == 0 && load.partition == day.description)
        let busy = try staged.extract(account, .usageRecords, day.adding(days: 1))
        #expect(
            busy.rows > 0 || ["calls", "messages"].allSatisfy { SandboxAPI.expected(account, $0, day: day.adding(days: 1)).count == 0 })
    }

    /// Runs a worker, then a loader, until each is idle. - Returns: the worker's log.
    @discardableResult
    func drain(_ fleet: FleetHarness) throws -> String {
        let started = Date()
        let name = "w-\(UInt32.random(in: 0...UInt32.max)).log"
        let worker = try fleet.worker(name, concurrency: 8)
        #expect(fleet.wait(worker, timeout: 400) == 0)
        print("drained the extract queue in \(Int(-started.timeIntervalSinceNow)) s")
        let loader = try fleet.loader("l-\(UInt32.random(in: 0...UInt32.max)).log")
        #expect(fleet.wait(loader, timeout: 400) == 0)
        return fleet.log(name)
    }
}
