import Foundation
import HuskimoCore

/// The warehouse contract: the seven tables of Huskimo 0.3 (schema, names, column names and order, which COPY
/// relies on). HuskimoFleet's warehouse dialects render it (with the load ledger) as DDL for PostgreSQL or Redshift.
///
/// Changes from 0.3, all widening (a 0.3 table still loads; see `sql/MIGRATION.md`):
/// - NOT NULL kept only where a value is always present (channel_name, when_retrieved, SIDs, Singular keys):
///   a missing Twilio date is NULL now, where 0.3 wrote the current time.
/// - Text columns sized for real data: URLs 8192, country names 128, free text 65535 on Redshift.
package enum WarehouseSchema {
    /// Which warehouse a target is (the configuration's `targets[].type`); HuskimoFleet's `Flavor.dialect` is all
    /// that differs between them.
    package enum Flavor: String, Sendable, CaseIterable { case redshift, postgres }

    package struct Column: Sendable {
        package var name: String
        /// PostgreSQL type; Redshift uses the same except `text` → `varchar(65535)`.
        package var type: String
        package var notNull: Bool
    }

    /// One table. Its name, partition column and replace-or-append rule come from the ``Resource`` catalogue.
    package struct Table: Sendable {
        package var resource: Resource
        package var columns: [Column]
        package var distKey: String
        package var sortKey: [String]

        package var name: String { resource.table }
        /// The column whose UTC day is a Twilio partition (nil: snapshot or Singular).
        package var partitionColumn: String? { resource.partitionColumn }
        /// Singular tables keep every retrieval; Twilio partitions and snapshots are replaced.
        package var appendOnly: Bool { resource.appendOnly }

        package var columnList: String { columns.map { WarehouseSchema.quote($0.name) }.joined(separator: ", ") }
    }

    /// The byte limit of a `varchar(n)` / `char(n)` type (nil: unbounded, or not a string type).
    static func byteLimit(_ type: String) -> Int? {
        for prefix in ["varchar(", "char("] where type.hasPrefix(prefix) && type.hasSuffix(")") {
            return Int(type.dropFirst(prefix.count).dropLast())
        }
        return nil
    }

    package static func quote(_ name: String) -> String { ["to", "from", "count", "usage"].contains(name) ? "\"\(name)\"" : name }

    private static func c(_ name: String, _ type: String, _ notNull: Bool = false) -> Column {
        Column(name: name, type: type, notNull: notNull)
    }

    private static let head = [c("channel_name", "varchar(512)", true), c("when_retrieved", "timestamp", true)]
    private static let twilioHead =
        head + [
            c("sid", "varchar(34)", true), c("account_sid", "varchar(34)", true), c("api_version", "varchar(128)"),
            c("date_created", "timestamp"), c("date_updated", "timestamp"),
        ]

    package static let tables: [Table] = [
        Table(
            resource: .calls,
            columns: twilioHead + [
                c("parent_call_sid", "varchar(34)"), c("to", "varchar(512)"), c("from", "varchar(512)"),
                c("phone_number_sid", "varchar(34)"), c("status", "varchar(32)"), c("start_time", "timestamp"),
                c("end_time", "timestamp"), c("duration", "varchar(512)"), c("price", "varchar(512)"),
                c("direction", "varchar(512)"), c("answered_by", "varchar(512)"), c("forwarded_from", "varchar(512)"),
                c("caller_name", "varchar(512)"),
            ], distKey: "account_sid", sortKey: ["date_created", "when_retrieved"]),
        Table(
            resource: .messages,
            columns: twilioHead + [
                c("date_sent", "timestamp"), c("to", "varchar(512)"), c("from", "varchar(512)"), c("body_length", "bigint"),
                c("status", "varchar(32)"), c("price", "varchar(128)"), c("price_unit", "varchar(3)"), c("num_media", "bigint"),
                c("num_segments", "bigint"), c("direction", "varchar(32)"), c("error_message", "varchar(512)"),
            ], distKey: "account_sid", sortKey: ["date_created", "when_retrieved"]),
        Table(
            resource: .recordings,
            columns: twilioHead + [
                c("call_sid", "varchar(34)"), c("duration", "bigint"),
            ], distKey: "account_sid", sortKey: ["date_created", "when_retrieved"]),
        Table(
            resource: .incomingPhoneNumbers,
            columns: twilioHead + [
                c("friendly_name", "varchar(512)"), c("phone_number", "varchar(128)"), c("voice_application_sid", "varchar(128)"),
                c("sms_application_sid", "varchar(128)"), c("voice_url", "varchar(8192)"), c("voice_method", "varchar(8)"),
                c("voice_fallback_url", "varchar(8192)"), c("voice_fallback_method", "varchar(8)"),
                c("status_callback", "varchar(8192)"), c("status_fallback_method", "varchar(8)"),
                c("voice_caller_id_lookup", "boolean"), c("sms_url", "varchar(8192)"), c("sms_method", "varchar(512)"),
                c("sms_fallback_url", "varchar(8192)"), c("sms_fallback_method", "varchar(8)"),
                c("sms_status_callback", "varchar(8192)"), c("address_requirements", "varchar(12)"),
            ], distKey: "account_sid", sortKey: ["date_created", "when_retrieved"]),
        Table(
            resource: .pricingPhoneNumbers,
            columns: head + [
                c("country", "varchar(128)", true), c("iso_country", "char(2)", true), c("price_unit", "char(3)", true),
                c("number_type", "varchar(32)", true), c("base_price", "varchar(128)", true), c("current_price", "varchar(128)", true),
            ], distKey: "iso_country", sortKey: ["when_retrieved"]),
        Table(
            resource: .pricingVoice,
            columns: head + [
                c("country", "varchar(128)", true), c("iso_country", "char(2)", true), c("direction", "varchar(16)", true),
                c("prefixes", "text"), c("friendly_name", "varchar(512)"), c("number_type", "varchar(32)"),
                c("base_price", "varchar(128)"), c("current_price", "varchar(128)"), c("price_unit", "varchar(8)"),
            ], distKey: "iso_country", sortKey: ["when_retrieved"]),
        Table(
            resource: .pricingMessaging,
            columns: head + [
                c("country", "varchar(128)", true), c("iso_country", "char(2)", true), c("direction", "varchar(16)", true),
                c("carrier", "varchar(512)"), c("mcc", "varchar(8)"), c("mnc", "varchar(8)"), c("number_type", "varchar(32)"),
                c("base_price", "varchar(128)"), c("current_price", "varchar(128)"), c("price_unit", "varchar(8)"),
            ], distKey: "iso_country", sortKey: ["when_retrieved"]),
        Table(
            resource: .usageRecords,
            columns: head + [
                c("account_sid", "varchar(34)", true), c("usage_date", "date", true), c("category", "varchar(128)", true),
                c("description", "varchar(512)"), c("count", "bigint"), c("count_unit", "varchar(64)"), c("usage", "varchar(128)"),
                c("usage_unit", "varchar(64)"), c("price", "varchar(128)"), c("price_unit", "varchar(8)"), c("as_of", "timestamp"),
            ], distKey: "account_sid", sortKey: ["usage_date", "when_retrieved"]),
        Table(
            resource: .campaigns,
            columns: head + [
                c("ad_network", "varchar(512)", true), c("campaign_name", "varchar(512)", true), c("campaign_type", "varchar(512)"),
                c("campaign_url", "varchar(8192)"), c("subcampaign_name", "varchar(512)"), c("app_id", "varchar(512)"),
                c("campaign_network_id", "varchar(512)"), c("country", "varchar(2)"), c("reporting_date", "timestamp", true),
                c("impressions", "bigint"), c("clicks", "bigint"), c("installs", "bigint"), c("cost", "decimal(10, 2)"),
                c("revenue", "decimal(10, 2)"), c("last_modified", "timestamp"),
            ], distKey: "ad_network", sortKey: ["reporting_date", "when_retrieved"]),
        Table(
            resource: .creatives,
            columns: head + [
                c("ad_network", "varchar(512)", true), c("creative_name", "varchar(512)"), c("creative_text", "varchar(512)"),
                c("image", "varchar(8192)", true), c("image_hash", "varchar(512)", true), c("width", "varchar(512)"),
                c("height", "varchar(512)"), c("is_video", "boolean", true), c("campaign_name", "varchar(512)", true),
                c("campaign_type", "varchar(512)"), c("campaign_url", "varchar(8192)"), c("subcampaign_name", "varchar(512)"),
                c("app_id", "varchar(512)"), c("campaign_network_id", "varchar(512)"), c("reporting_date", "timestamp", true),
                c("impressions", "bigint"), c("clicks", "bigint"), c("installs", "bigint"), c("cost", "decimal(10, 2)"),
                c("modified_at", "timestamp"),
            ], distKey: "ad_network", sortKey: ["reporting_date", "when_retrieved"]),
    ]

    /// Columns NOT NULL in an earlier version and nullable now, by table: Singular's Reporting API v2.0 has no campaign
    /// type and no modification time (issue 23). The DDL brings an existing table in line where the warehouse can.
    package static let relaxedColumns: [(table: String, columns: [String])] = [
        ("singular_campaigns", ["campaign_type", "last_modified"]), ("singular_creatives", ["campaign_type", "modified_at"]),
    ]

    package static func table(_ name: String) -> Table? { tables.first { $0.name == name } }

    /// The table of a resource (every resource has one: a test checks the catalogue and the schema line up).
    static func table(for resource: Resource) -> Table {
        guard let table = tables.first(where: { $0.resource == resource }) else {
            preconditionFailure("no warehouse table for \(resource)")
        }
        return table
    }
}
