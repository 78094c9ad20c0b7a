"""Baseline for bench/run.sh: a straightforward hand-written Python extractor (urllib + json + csv + gzip), as a
data engineer would write it. It pages through each job's list, keeps the columns Huskimo loads, and writes them as
gzip TSV (to memory: no S3, no warehouse, no date conversion — less work than the worker does).

    python3 bench/python_extract.py BASE_URL SID TOKEN DAY          one day of calls (the single-day benchmark)
    python3 bench/python_extract.py BASE_URL --jobs FILE             one job per line: SID TOKEN RESOURCE [DAY]

Prints records, jobs and its own CPU seconds."""
import base64, csv, gzip, io, json, resource, sys, urllib.request

COLUMNS = {
    "calls": ["sid", "account_sid", "api_version", "date_created", "date_updated", "parent_call_sid", "to", "from",
              "phone_number_sid", "status", "start_time", "end_time", "duration", "price", "direction", "answered_by",
              "forwarded_from", "caller_name"],
    "messages": ["sid", "account_sid", "api_version", "date_created", "date_updated", "date_sent", "to", "from", "body",
                 "status", "price", "price_unit", "num_media", "num_segments", "direction", "error_message"],
    "recordings": ["sid", "account_sid", "api_version", "date_created", "date_updated", "call_sid", "duration"],
    "incoming_phone_numbers": ["sid", "account_sid", "api_version", "date_created", "date_updated", "friendly_name",
                               "phone_number", "voice_application_sid", "sms_application_sid", "voice_url", "voice_method",
                               "voice_fallback_url", "voice_fallback_method", "status_callback", "status_callback_method",
                               "voice_caller_id_lookup", "sms_url", "sms_method", "sms_fallback_url", "sms_fallback_method",
                               "sms_status_callback", "address_requirements"],
}
PATHS = {"calls": ("Calls", "StartTime"), "messages": ("Messages", "DateSent"), "recordings": ("Recordings", "DateCreated"),
         "incoming_phone_numbers": ("IncomingPhoneNumbers", None)}


def extract(base, sid, token, res, day):
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    path, day_filter = PATHS[res]
    columns = COLUMNS[res]
    out = io.BytesIO()
    records = 0
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        writer = csv.writer(text, delimiter="\t")
        url = f"{base}/2010-04-01/Accounts/{sid}/{path}.json?PageSize=1000"
        if day_filter:
            url += f"&{day_filter}={day}"
        while url:
            request = urllib.request.Request(url, headers={"Authorization": auth, "Accept": "application/json"})
            page = json.load(urllib.request.urlopen(request))
            for record in page[res]:
                writer.writerow(["bulk", "now"] + [record.get(c) for c in columns])
                records += 1
            url = base + page["next_page_uri"] if page.get("next_page_uri") else None
        text.flush()
    return records


base = sys.argv[1]
if sys.argv[2] == "--jobs":
    jobs = [line.split() for line in open(sys.argv[3]) if line.strip()]
else:
    jobs = [[sys.argv[2], sys.argv[3], "calls", sys.argv[4]]]
records = sum(extract(base, job[0], job[1], job[2], job[3] if len(job) > 3 else None) for job in jobs)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"records={records} jobs={len(jobs)} cpu_s={usage.ru_utime + usage.ru_stime:.3f}")
