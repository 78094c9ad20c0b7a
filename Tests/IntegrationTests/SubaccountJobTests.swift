import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// A channel with subaccounts plans a job per account and day: each account has its own share of the day's
/// partitions, its own ledger entries, its own request limit and its own reconciliation; one that Twilio cannot serve
/// is parked alone, and once re-driven its share loads without touching the others'.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct SubaccountJobTests {
    @Test func eachSubaccountIsAJobOfItsOwnAndFailsAlone() throws {
        let parent = SandboxAccount.defaults[0]
        let (support, sales) = (SandboxAccount.sid(0x11), SandboxAccount.sid(0x12))
        let fleet = try FleetHarness(accounts: [("us", parent)])
        defer { fleet.cleanUp() }
        fleet.twilioOptions["us"] = "subaccounts: true"
        fleet.maxAttempts = 1  // parked at the first failure (each attempt already retries its requests for half a minute)
        try fleet.writeConfig()
        try fleet.applyDDL()
        let days = [Day.today.adding(days: -6), Day.today.adding(days: -5)]
        fleet.api.setFaults(SandboxFaults(twilioBrokenAccounts: [sales]))
        let selection = [
            "--from", "\(days[0])", "--to", "\(days[1])", "--resource", "calls", "--resource", "messages", "--resource", "usage_records",
        ]
        var (code, output) = try fleet.run("huskimo-planner", ["plan", "--config", fleet.configPath] + selection)
        #expect(code == 0 && output.contains("planned run") && output.contains(": 18 jobs"), "3 accounts × 3 resources × 2 days: \(output)")
        try drain(fleet)

        // The subaccount Twilio cannot serve is parked alone, job by job; the others loaded.
        let parked = try fleet.parkedJobIDs()
        #expect(parked.count == 3 * 2 && parked.allSatisfy { $0.hasSuffix("/\(sales)") }, "\(parked)")
        let pg = try PostgresConnection(try TestServices.postgres())
        func rows(_ table: String, _ column: String, _ account: String, _ day: Day) throws -> Int {
            Int(
                try pg.query(
                    "SELECT count(*) FROM \(fleet.id).\(table) WHERE account_sid = $1 AND \(column) >= $2::timestamp AND \(column) < $3::timestamp",
                    [account, "\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"])[0][0]!)!
        }
        let accounts = SandboxAccount.defaults.filter { [parent.sid, support, sales].contains($0.sid) }
        for day in days {
            for account in accounts {
                let calls = account.sid == sales ? 0 : SandboxAPI.expected(account, "calls", day: day).count
                #expect(try rows("twilio_calls", "start_time", account.sid, day) == calls, "\(account.friendlyName) \(day)")
            }
        }
        let ledger = Set(try pg.query("SELECT DISTINCT channel_name FROM \(fleet.id).load_ledger").map { $0[0]! })
        #expect(ledger == ["us/\(parent.sid)", "us/\(support)"], "a ledger entry per account: \(ledger)")

        // Twilio serves it again; re-driven, its share loads and the others' rows stay as they were.
        let before = try pg.query("SELECT sid, when_retrieved FROM \(fleet.id).twilio_calls WHERE account_sid <> $1 ORDER BY sid", [sales])
        fleet.api.setFaults(SandboxFaults())
        (code, output) = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath])
        #expect(code == 0 && output.contains("requeued 6"), "\(output)")
        try drain(fleet)
        for day in days {
            for account in accounts {
                #expect(try rows("twilio_calls", "start_time", account.sid, day) == SandboxAPI.expected(account, "calls", day: day).count)
                #expect(
                    try rows("twilio_messages", "date_sent", account.sid, day) == SandboxAPI.expected(account, "messages", day: day).count)
            }
        }
        let after = try pg.query("SELECT sid, when_retrieved FROM \(fleet.id).twilio_calls WHERE account_sid <> $1 ORDER BY sid", [sales])
        #expect(before == after, "loading one account's share replaced nothing of the others'")
        #expect(try fleet.duplicates("twilio_calls") == 0 && fleet.duplicates("twilio_messages") == 0)

        // Each account reconciled against its own usage; status lists the channel once, not per account.
        let verdicts = try pg.query("SELECT channel_name, state FROM \(fleet.id).reconciliation")
        #expect(verdicts.count == 3 * 2 * 2 && verdicts.allSatisfy { $0[1] == "reconciled" }, "\(verdicts)")
        (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(code == 0 && output.contains("/ twilio_calls / us →") && !output.contains("/ us/AC"), "\(output)")
    }

    func drain(_ fleet: FleetHarness) throws {
        let worker = try fleet.worker("w-\(UInt32.random(in: 0...UInt32.max)).log", concurrency: 6)
        #expect(fleet.wait(worker, timeout: 240) == 0)
        let loader = try fleet.loader("l-\(UInt32.random(in: 0...UInt32.max)).log")
        #expect(fleet.wait(loader, timeout: 240) == 0)
    }
}
