import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite struct RedshiftCopyTests {
    @Test func theCopyStatementIsPinned() {
        let table = WarehouseSchema.table("twilio_recordings")!
        let sql = RedshiftCopy.statement(
            schema: "huskimo", table: table, bucket: "bkt", manifestKey: "stage/a.tsv.gz.manifest",
            region: "eu-west-1", auth: .iamRole("arn:aws:iam::123456789012:role/loader"))
        #expect(
            sql == """
                COPY "huskimo".twilio_recordings (channel_name, when_retrieved, sid, account_sid, api_version, date_created, date_updated, call_sid, duration) \
                FROM 's3://bkt/stage/a.tsv.gz.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/loader' MANIFEST REGION 'eu-west-1' GZIP \
                DELIMITER '\\t' ESCAPE TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' MAXERROR 0 COMPUPDATE OFF STATUPDATE OFF
                """)
        for forbidden in ["EMPTYASNULL", "BLANKSASNULL", "ACCEPTINVCHARS", "TRUNCATECOLUMNS", "NULL AS", "CSV"] {
            #expect(!sql.contains(forbidden))
        }
        let keys = RedshiftCopy.statement(
            schema: "s", table: table, bucket: "b", manifestKey: "m", region: "r",
            auth: .keys("AKIA", Secret("it's-secret")))
        #expect(keys.contains("ACCESS_KEY_ID 'AKIA' SECRET_ACCESS_KEY 'it''s-secret'"))
    }

    @Test func manifestsListFullURLsMandatory() {
        #expect(
            RedshiftCopy.manifest(bucket: "b", keys: ["x/1.tsv.gz", "x/2.tsv.gz"])
                == #"{"entries":[{"url":"s3://b/x/1.tsv.gz","mandatory":true},{"url":"s3://b/x/2.tsv.gz","mandatory":true}]}"#)
    }

    @Test func ddlKeepsThe03ColumnOrderAndKeys() {
        let redshift = RedshiftDialect().ddl(schema: "huskimo")
        #expect(redshift.contains("DISTSTYLE KEY DISTKEY (account_sid) SORTKEY (date_created, when_retrieved)"))
        #expect(redshift.contains("DISTSTYLE KEY DISTKEY (iso_country) SORTKEY (when_retrieved)"))
        #expect(WarehouseSchema.table("twilio_calls")!.columns.map(\.name) == TwilioTable.calls.columnNames)
        #expect(WarehouseSchema.table("twilio_messages")!.columns.map(\.name) == TwilioTable.messages.columnNames)
        #expect(WarehouseSchema.table("twilio_recordings")!.columns.map(\.name) == TwilioTable.recordings.columnNames)
        #expect(WarehouseSchema.table("twilio_incoming_phone_numbers")!.columns.map(\.name) == TwilioTable.incomingPhoneNumbers.columnNames)
        #expect(WarehouseSchema.table("twilio_pricing_phone_numbers")!.columns.map(\.name) == TwilioTable.pricingColumns)
        #expect(WarehouseSchema.table("singular_campaigns")!.columns.count == 17)
        #expect(WarehouseSchema.table("singular_creatives")!.columns.count == 22)
    }
}
