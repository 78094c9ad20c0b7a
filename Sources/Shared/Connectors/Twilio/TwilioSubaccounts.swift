import Foundation
import HuskimoCore

/// Which subaccounts a `subaccounts: true` channel extracts (keys `include`, `exclude`, `status`): each a list of exact
/// Account SIDs or case-sensitive shell globs on the friendly name (`Client *`, `[A-M]*`); `include` empty means every
/// one; `exclude` wins over `include`; `status` (default `active`) lists which of `active`, `suspended`, `closed` are
/// read. The parent account is always read. Each selected subaccount is requested as its own account (its own rate
/// limit); its rows carry its `account_sid`.
struct SubaccountSelection: Sendable, Equatable {
    var include: [String] = []
    var exclude: [String] = []
    var statuses: Set<String> = ["active"]

    static let keys = ["include", "exclude", "status"]
    static let knownStatuses: Set<String> = ["active", "suspended", "closed"]

    /// The selection of `channel` and what is wrong with it (key, message).
    static func read(_ channel: ChannelConfig) -> (selection: SubaccountSelection, problems: [(key: String, message: String)]) {
        var selection = SubaccountSelection()
        var problems: [(key: String, message: String)] = []
        func list(_ key: String) -> [String] {
            (channel.options[key] ?? "").split(whereSeparator: { $0 == "\n" || $0 == "," }).map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty }
        }
        for key in ["include", "exclude"] {
            let items = list(key)
            if let bad = items.first(where: { $0.utf8.count > 256 || $0.unicodeScalars.contains { $0.value < 0x20 } }) {
                problems.append(
                    (key, "a pattern of at most 256 characters without control characters, got \"\(bad.printable(limit: 40))\""))
            }
            if key == "include" { selection.include = items } else { selection.exclude = items }
        }
        if channel.options["status"] != nil {
            let statuses = Set(list("status").map { $0.lowercased() })
            if statuses.isEmpty || !statuses.isSubset(of: knownStatuses) {
                problems.append(("status", "expected one or more of active, suspended, closed"))
            } else {
                selection.statuses = statuses
            }
        }
        if !channel.subaccounts {
            for key in keys where channel.options[key] != nil {
                problems.append((key, "selects subaccounts: applies with subaccounts: true only"))
            }
        }
        return (selection, problems)
    }

    /// Whether a subaccount is read.
    func selects(sid: String, name: String, status: String) -> Bool {
        guard statuses.contains(status.lowercased()) else { return false }
        func matches(_ pattern: String) -> Bool { pattern == sid || fnmatch(pattern, name, 0) == 0 }
        if exclude.contains(where: matches) { return false }
        return include.isEmpty || include.contains(where: matches)
    }
}

/// A subaccount as discovery found it, and whether the selection reads it.
struct DiscoveredAccount: Sendable, Equatable {
    var sid: String
    var name: String
    var status: String
    var selected: Bool
}

extension DiscoveredAccount {
    /// What `plan --dry-run` and `status` say of a channel's discovery: counts, and the accounts by name (at most `limit`).
    static func summary(_ accounts: [DiscoveredAccount], limit: Int = 20) -> String {
        let selected = accounts.filter(\.selected)
        let left = accounts.count - selected.count
        func list(_ items: [DiscoveredAccount]) -> String {
            items.prefix(limit).map { "\($0.sid) (\($0.name.printable(limit: 40)), \($0.status))" }.joined(separator: ", ")
                + (items.count > limit ? ", … \(items.count - limit) more" : "")
        }
        var text = "\(accounts.count) subaccounts found, \(selected.count) selected"
        if !selected.isEmpty { text += ": " + list(selected) }
        if left > 0 { text += "; left out: " + list(accounts.filter { !$0.selected }) }
        return text
    }
}
