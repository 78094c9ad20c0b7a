import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The two seams new APIs and warehouses land in: the connector registry and the warehouse dialects.
@Suite struct SeamTests {
    @Test func everyResourceHasOneConnectorATableAndARowLayout() throws {
        #expect(ConnectorRegistry.types == [.twilio, .singular])
        #expect(Set(Resource.allCases.map(\.rawValue)).count == Resource.allCases.count)
        for resource in Resource.allCases {
            let connector = try #require(ConnectorRegistry.connector(for: resource.channelType))
            #expect(connector.resources.contains { $0.resource == resource })
            #expect(WarehouseSchema.tables.contains { $0.resource == resource }, "\(resource) has no table in WarehouseSchema")
            #expect(
                resource.twilioTable != nil || resource.singularTable != nil || resource.twilioPricing != nil,
                "\(resource) has no row layout")
            #expect(Resource(rawValue: resource.rawValue) == resource && Resource(table: resource.table) == resource)
        }
        // A name no connector declares is not a resource, from a message or the command line.
        #expect(Resource(rawValue: "invoices") == nil)
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Resource.self, from: Data(#""invoices""#.utf8)) }
        #expect(try JSONDecoder().decode(Resource.self, from: Data(#""calls""#.utf8)) == .calls)
    }

    @Test func eachConnectorsDayPolicyIsItsOwn() {
        let today = Day("2026-12-06")!
        func request(_ explicit: [Day]? = nil, start: Day? = nil, loaded: Set<Day> = []) -> DayPlanRequest {
            DayPlanRequest(
                explicit: explicit, runDay: today.adding(days: -1), today: today, settleDays: 2, lookback: 3, startDate: start,
                loaded: { loaded })
        }
        // Twilio: the run day and the settle window; catch-up of what no target has; nothing past the list window.
        #expect(TwilioConnector().days(request()).days.map(\.description) == ["2026-12-05", "2026-12-04", "2026-12-03"])
        let catchUp = TwilioConnector().days(request(start: Day("2026-11-29"), loaded: [Day("2026-11-30")!]))
        #expect(catchUp.days.map(\.description) == ["2026-12-05", "2026-12-04", "2026-12-03", "2026-11-29", "2026-12-01", "2026-12-02"])
        let old = TwilioConnector().days(request([today.adding(days: -401), today.adding(days: -400)]))
        #expect(
            old.days == [today.adding(days: -400)] && old.refused == [today.adding(days: -401)] && old.reason?.contains("400-day") == true)
        // Singular: the lookback ending at the run day, any age, never the ledger.
        #expect(
            SingularConnector().days(request(start: Day("2020-01-01"))).days.map(\.description) == [
                "2026-12-05", "2026-12-04", "2026-12-03",
            ])
        #expect(SingularConnector().days(request([today.adding(days: -900)])).refused.isEmpty)
    }

    @Test func eachDialectRendersTheCommittedDDLAndItsOwnRules() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for flavor in WarehouseSchema.Flavor.allCases {
            let committed = try String(contentsOf: root.appendingPathComponent("sql/\(flavor.rawValue)/0001_huskimo.sql"), encoding: .utf8)
            #expect(flavor.dialect.ddl(schema: "huskimo") == committed, "regenerate with: huskimo-planner ddl --flavor \(flavor.rawValue)")
            #expect(flavor.dialect.flavor == flavor)
        }
        let target = try #require(try WorkerDecisionTests.config().targets.first { $0.type == .redshift })
        // Redshift has no lock_timeout (setting it fails every connection); PostgreSQL bounds lock waits too.
        #expect(RedshiftDialect().session(target).map(\.name) == ["statement_timeout"])
        #expect(PostgresDialect().session(target).map(\.name) == ["statement_timeout", "lock_timeout"])
        #expect(RedshiftDialect().columnType("text") == "varchar(65535)" && PostgresDialect().columnType("text") == "text")
        #expect(RedshiftDialect().defaultPort == 5439 && PostgresDialect().defaultPort == 5432)
        #expect(target.port == 5439)
        let unexplained = LoadError(loadID: "l", errorClass: .permanent, message: "COPY failed")
        #expect(RedshiftDialect().explain(unexplained, nil).message == "COPY failed")
    }
}
