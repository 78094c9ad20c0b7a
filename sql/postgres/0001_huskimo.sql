-- Huskimo warehouse DDL (postgres), schema huskimo. Idempotent: safe to apply again.
CREATE SCHEMA IF NOT EXISTS "huskimo";

CREATE TABLE IF NOT EXISTS "huskimo".twilio_calls (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    sid                      varchar(34) NOT NULL,
    account_sid              varchar(34) NOT NULL,
    api_version              varchar(128),
    date_created             timestamp,
    date_updated             timestamp,
    parent_call_sid          varchar(34),
    "to"                     varchar(512),
    "from"                   varchar(512),
    phone_number_sid         varchar(34),
    status                   varchar(32),
    start_time               timestamp,
    end_time                 timestamp,
    duration                 varchar(512),
    price                    varchar(512),
    direction                varchar(512),
    answered_by              varchar(512),
    forwarded_from           varchar(512),
    caller_name              varchar(512)
);
CREATE INDEX IF NOT EXISTS twilio_calls_partition ON "huskimo".twilio_calls (channel_name, start_time);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_messages (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    sid                      varchar(34) NOT NULL,
    account_sid              varchar(34) NOT NULL,
    api_version              varchar(128),
    date_created             timestamp,
    date_updated             timestamp,
    date_sent                timestamp,
    "to"                     varchar(512),
    "from"                   varchar(512),
    body_length              bigint,
    status                   varchar(32),
    price                    varchar(128),
    price_unit               varchar(3),
    num_media                bigint,
    num_segments             bigint,
    direction                varchar(32),
    error_message            varchar(512)
);
CREATE INDEX IF NOT EXISTS twilio_messages_partition ON "huskimo".twilio_messages (channel_name, date_sent);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_recordings (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    sid                      varchar(34) NOT NULL,
    account_sid              varchar(34) NOT NULL,
    api_version              varchar(128),
    date_created             timestamp,
    date_updated             timestamp,
    call_sid                 varchar(34),
    duration                 bigint
);
CREATE INDEX IF NOT EXISTS twilio_recordings_partition ON "huskimo".twilio_recordings (channel_name, date_created);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_incoming_phone_numbers (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    sid                      varchar(34) NOT NULL,
    account_sid              varchar(34) NOT NULL,
    api_version              varchar(128),
    date_created             timestamp,
    date_updated             timestamp,
    friendly_name            varchar(512),
    phone_number             varchar(128),
    voice_application_sid    varchar(128),
    sms_application_sid      varchar(128),
    voice_url                varchar(8192),
    voice_method             varchar(8),
    voice_fallback_url       varchar(8192),
    voice_fallback_method    varchar(8),
    status_callback          varchar(8192),
    status_fallback_method   varchar(8),
    voice_caller_id_lookup   boolean,
    sms_url                  varchar(8192),
    sms_method               varchar(512),
    sms_fallback_url         varchar(8192),
    sms_fallback_method      varchar(8),
    sms_status_callback      varchar(8192),
    address_requirements     varchar(12)
);
CREATE INDEX IF NOT EXISTS twilio_incoming_phone_numbers_partition ON "huskimo".twilio_incoming_phone_numbers (channel_name);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_pricing_phone_numbers (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    country                  varchar(128) NOT NULL,
    iso_country              char(2) NOT NULL,
    price_unit               char(3) NOT NULL,
    number_type              varchar(32) NOT NULL,
    base_price               varchar(128) NOT NULL,
    current_price            varchar(128) NOT NULL
);
CREATE INDEX IF NOT EXISTS twilio_pricing_phone_numbers_partition ON "huskimo".twilio_pricing_phone_numbers (channel_name);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_pricing_voice (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    country                  varchar(128) NOT NULL,
    iso_country              char(2) NOT NULL,
    direction                varchar(16) NOT NULL,
    prefixes                 text,
    friendly_name            varchar(512),
    number_type              varchar(32),
    base_price               varchar(128),
    current_price            varchar(128),
    price_unit               varchar(8)
);
CREATE INDEX IF NOT EXISTS twilio_pricing_voice_partition ON "huskimo".twilio_pricing_voice (channel_name);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_pricing_messaging (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    country                  varchar(128) NOT NULL,
    iso_country              char(2) NOT NULL,
    direction                varchar(16) NOT NULL,
    carrier                  varchar(512),
    mcc                      varchar(8),
    mnc                      varchar(8),
    number_type              varchar(32),
    base_price               varchar(128),
    current_price            varchar(128),
    price_unit               varchar(8)
);
CREATE INDEX IF NOT EXISTS twilio_pricing_messaging_partition ON "huskimo".twilio_pricing_messaging (channel_name);

CREATE TABLE IF NOT EXISTS "huskimo".twilio_usage_records (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    account_sid              varchar(34) NOT NULL,
    usage_date               date NOT NULL,
    category                 varchar(128) NOT NULL,
    description              varchar(512),
    "count"                  bigint,
    count_unit               varchar(64),
    "usage"                  varchar(128),
    usage_unit               varchar(64),
    price                    varchar(128),
    price_unit               varchar(8),
    as_of                    timestamp
);
CREATE INDEX IF NOT EXISTS twilio_usage_records_partition ON "huskimo".twilio_usage_records (channel_name, usage_date);

CREATE TABLE IF NOT EXISTS "huskimo".singular_campaigns (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    ad_network               varchar(512) NOT NULL,
    campaign_name            varchar(512) NOT NULL,
    campaign_type            varchar(512),
    campaign_url             varchar(8192),
    subcampaign_name         varchar(512),
    app_id                   varchar(512),
    campaign_network_id      varchar(512),
    country                  varchar(2),
    reporting_date           timestamp NOT NULL,
    impressions              bigint,
    clicks                   bigint,
    installs                 bigint,
    cost                     decimal(10, 2),
    revenue                  decimal(10, 2),
    last_modified            timestamp
);
CREATE INDEX IF NOT EXISTS singular_campaigns_partition ON "huskimo".singular_campaigns (channel_name, reporting_date);

CREATE TABLE IF NOT EXISTS "huskimo".singular_creatives (
    channel_name             varchar(512) NOT NULL,
    when_retrieved           timestamp NOT NULL,
    ad_network               varchar(512) NOT NULL,
    creative_name            varchar(512),
    creative_text            varchar(512),
    image                    varchar(8192) NOT NULL,
    image_hash               varchar(512) NOT NULL,
    width                    varchar(512),
    height                   varchar(512),
    is_video                 boolean NOT NULL,
    campaign_name            varchar(512) NOT NULL,
    campaign_type            varchar(512),
    campaign_url             varchar(8192),
    subcampaign_name         varchar(512),
    app_id                   varchar(512),
    campaign_network_id      varchar(512),
    reporting_date           timestamp NOT NULL,
    impressions              bigint,
    clicks                   bigint,
    installs                 bigint,
    cost                     decimal(10, 2),
    modified_at              timestamp
);
CREATE INDEX IF NOT EXISTS singular_creatives_partition ON "huskimo".singular_creatives (channel_name, reporting_date);

ALTER TABLE "huskimo".singular_campaigns ALTER COLUMN campaign_type DROP NOT NULL, ALTER COLUMN last_modified DROP NOT NULL;

ALTER TABLE "huskimo".singular_creatives ALTER COLUMN campaign_type DROP NOT NULL, ALTER COLUMN modified_at DROP NOT NULL;

-- One row per staged object loaded: what makes loads idempotent and ordered.
CREATE TABLE IF NOT EXISTS "huskimo".load_ledger (
    object_key               varchar(1024) NOT NULL,
    table_name               varchar(128) NOT NULL,
    channel_name             varchar(512) NOT NULL,
    partition_key            varchar(32) NOT NULL,
    rows_loaded              bigint NOT NULL,
    job_id                   varchar(1024) NOT NULL,
    load_id                  varchar(1100) NOT NULL,
    extracted_at             timestamptz NOT NULL,
    loaded_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, object_key)
);
CREATE INDEX IF NOT EXISTS load_ledger_partition ON "huskimo".load_ledger (table_name, channel_name, partition_key, extracted_at);

-- One row per replace of a partition (or snapshot): what it changed. outcome 'identical': the re-read had
-- the content digest of what was loaded, and the load was skipped.
CREATE TABLE IF NOT EXISTS "huskimo".load_reports (
    load_id                  varchar(1100) NOT NULL,
    table_name               varchar(128) NOT NULL,
    channel_name             varchar(512) NOT NULL,
    partition_key            varchar(32) NOT NULL,
    extracted_at             timestamptz NOT NULL,
    loaded_at                timestamptz NOT NULL DEFAULT now(),
    outcome                  varchar(16) NOT NULL,
    rows_before              bigint NOT NULL,
    rows_after               bigint NOT NULL,
    rows_changed             bigint,
    rows_added               bigint,
    rows_removed             bigint,
    content_digest           varchar(64),
    run_id                   varchar(64),
    PRIMARY KEY (table_name, load_id)
);
CREATE INDEX IF NOT EXISTS load_reports_partition ON "huskimo".load_reports (table_name, channel_name, partition_key, extracted_at);

-- What loaders of this target lock for a table's batch where the warehouse has no advisory locks (Redshift):
-- never the data table, whose readers would wait for the whole load.
CREATE TABLE IF NOT EXISTS "huskimo".load_lock (
    target                   varchar(200)
);

-- Days of history asked for by huskimo-planner backfill (Twilio's Bulk Export), and the UTC day each was last
-- planned: the export-day quota is paced from it, and status counts the days not loaded yet.
CREATE TABLE IF NOT EXISTS "huskimo".history_days (
    channel_name             varchar(512) NOT NULL,
    resource                 varchar(64) NOT NULL,
    day_key                  varchar(10) NOT NULL,
    quota_key                varchar(128) NOT NULL,
    requested_at             timestamptz NOT NULL DEFAULT now(),
    planned_on               varchar(10),
    PRIMARY KEY (channel_name, resource, day_key)
);

-- Per channel, day and kind (calls, messages): the rows loaded that Twilio bills beside the day's billed count
-- in twilio_usage_records, and the verdict (reconciled, settling, rereading, unreconciled).
CREATE TABLE IF NOT EXISTS "huskimo".reconciliation (
    channel_name             varchar(512) NOT NULL,
    day_key                  varchar(10) NOT NULL,
    kind                     varchar(32) NOT NULL,
    rows_billable            bigint NOT NULL,
    billed                   bigint NOT NULL,
    state                    varchar(16) NOT NULL,
    rereads                  integer NOT NULL,
    checked_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_name, day_key, kind)
);

-- The latest retrieval of each (channel, reporting day): Singular restates spend for weeks and every run
-- appends a snapshot; most queries want only the newest one.
CREATE OR REPLACE VIEW "huskimo".singular_campaigns_latest AS
SELECT channel_name, when_retrieved, ad_network, campaign_name, campaign_type, campaign_url, subcampaign_name, app_id, campaign_network_id, country, reporting_date, impressions, clicks, installs, cost, revenue, last_modified
FROM (SELECT *, rank() OVER (PARTITION BY channel_name, reporting_date ORDER BY when_retrieved DESC) AS retrieval_rank
      FROM "huskimo".singular_campaigns) snapshots
WHERE retrieval_rank = 1;

-- The latest retrieval of each (channel, reporting day): Singular restates spend for weeks and every run
-- appends a snapshot; most queries want only the newest one.
CREATE OR REPLACE VIEW "huskimo".singular_creatives_latest AS
SELECT channel_name, when_retrieved, ad_network, creative_name, creative_text, image, image_hash, width, height, is_video, campaign_name, campaign_type, campaign_url, subcampaign_name, app_id, campaign_network_id, reporting_date, impressions, clicks, installs, cost, modified_at
FROM (SELECT *, rank() OVER (PARTITION BY channel_name, reporting_date ORDER BY when_retrieved DESC) AS retrieval_rank
      FROM "huskimo".singular_creatives) snapshots
WHERE retrieval_rank = 1;
