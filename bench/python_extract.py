"""Baseline for bench/run.sh extract: a straightforward hand-written Python extractor of one day of calls
(urllib + json + csv + gzip), as a data engineer would write it. Prints records and its own CPU seconds."""
import base64, csv, gzip, io, json, resource, sys, urllib.request

base, sid, token, day = sys.argv[1:5]
auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
columns = ["sid", "account_sid", "api_version", "date_created", "date_updated", "parent_call_sid", "to", "from",
           "phone_number_sid", "status", "start_time", "end_time", "duration", "price", "direction", "answered_by",
           "forwarded_from", "caller_name"]
out = io.BytesIO()
records = 0
with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
    text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
    writer = csv.writer(text, delimiter="\t")
    url = f"{base}/2010-04-01/Accounts/{sid}/Calls.json?StartTime={day}&PageSize=1000"
    while url:
        request = urllib.request.Request(url, headers={"Authorization": auth, "Accept": "application/json"})
        page = json.load(urllib.request.urlopen(request))
        for call in page["calls"]:
            writer.writerow(["bulk", "now"] + [call.get(c) for c in columns])
            records += 1
        url = base + page["next_page_uri"] if page.get("next_page_uri") else None
    text.flush()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"records={records} cpu_s={usage.ru_utime + usage.ru_stime:.3f}")
