import Foundation
import HuskimoCore
import SandboxKit

/// `huskimo-sandbox [--port N]`: serves the sandbox Twilio on 127.0.0.1 until killed; prints the port.
@main
struct Sandbox {
    static func main() throws {
        var port = 0
        var bulk: Int?
        var bulkDay: Int?
        var mix = false
        var small = 0
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            if argument == "--port", let value = arguments.popFirst(), let number = Int(value) { port = number }
            // Records per day of the "Bulk" account (AC…04), for benchmarks.
            if argument == "--bulk-records", let value = arguments.popFirst(), let number = Int(value) { bulk = number }
            // Exactly N calls and N messages every day of the "Bulk" account, whatever the day (benchmarks on days
            // relative to today: the average of --bulk-records varies ±50 % by day, and a tenth of days are empty).
            if argument == "--bulk-day-records", let value = arguments.popFirst(), let number = Int(value), number > 0 { bulkDay = number }
            // The realistic mix's five accounts (SandboxAccount.mix) and N small accounts (SandboxAccount.small).
            if argument == "--mix" { mix = true }
            if argument == "--small-accounts", let value = arguments.popFirst(), let number = Int(value) { small = number }
            // Singular records per day of every key (benchmarks).
            if argument == "--singular-records", let value = arguments.popFirst(), let number = Int(value), number > 0 {
                SandboxSingular.benchRecordsPerDay = number
            }
        }
        var accounts = SandboxAccount.defaults + (mix ? SandboxAccount.mix : []) + SandboxAccount.small(small)
        if let index = accounts.firstIndex(where: { $0.friendlyName == "Bulk" }) {
            if let bulk { accounts[index].recordsPerDay = bulk }
            if let bulkDay { accounts[index].fixedPerDay = ["calls": bulkDay, "messages": bulkDay] }
        }
        let api = SandboxAPI(accounts: accounts)
        // Benchmarks open many connections and keep them idle between runs: wider limits than a metrics port's.
        var limits = HTTPServer.Limits()
        limits.maxConnections = 4096
        limits.ioTimeout = 600
        let server = HTTPServer(limits: limits) { api.handle($0) }
        let bound = try server.start(port: port)
        FileHandle.standardOutput.write(Data("huskimo-sandbox listening on http://127.0.0.1:\(bound)\n".utf8))
        while true { sleep(3600) }
    }
}
