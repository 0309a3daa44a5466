"""The driver of scripts/soak: wrk reads while the school changes things, checked as it goes.

Partner reads run under wrk (demo-everything's token: a page of Students, a pupil by id, a
page of Staff and of Contacts, in turn). Meanwhile one thread, in a loop until the time is up
(back to back, or one turn every --pace seconds):

- uploads Students with one pupil's forename set to a new marker, then reads that pupil as
  demo-everything: the marker must be there (no upload lost);
- toggles demo-homework's consent between the demo's grant and the grant plus StudentExtended,
  then reads Students with its token: DateOfBirth is answered exactly when the consent in
  force releases it;
- opts a pupil out for demo-homework, reads them by id (nothing), lifts it, reads again (them);
- every tenth turn, runs `rollcall purge` on the same data directory.

Any 5xx, failed check or growth of the server's memory past 10% of its size after warm-up
(50% in a run under five minutes, which cannot tell the end of warm-up from growth) fails the
run. Prints the numbers for BENCHMARKS.md and the closing notes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

GRANTED = ["School", "Student", "Staff", "Contact"]
WIDER = GRANTED + ["StudentExtended"]
WRK_SCRIPT = r"""
local paths = {}
function init(args)
  for i = 1, #args do paths[i] = args[i] end
  n = 0
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
function done(summary, latency, requests)
  io.write(string.format("wrk-summary %d %d %d\n", summary.requests,
    summary.errors.status, latency:percentile(99)))
end
"""


def call(base, method, path, auth=None, body=None):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Soak:
    def __init__(self, args):
        self.args = args
        demo = json.load(open(os.path.join(args.data_dir, "demo.json")))
        self.base, self.estab = demo["base_url"], demo["estab"]
        self.agent = "Bearer " + demo["agent_key"]
        self.admin = "Bearer " + demo["admin_key"]
        self.partners = {p["id"]: p for p in demo["partners"]}
        self.counts = {"uploads": 0, "consent changes": 0, "opt-out changes": 0,
                       "purges": 0, "checked answers": 0}
        self.failures = []
        extract = subprocess.run(
            [args.bin, "demo-school", "--pupils", "500", "--estab", self.estab],
            check=True, capture_output=True).stdout
        self.students = json.loads(extract)["resultSets"]["Students"]

    def token(self, partner):
        p = self.partners[partner]
        status, body = call(self.base, "POST", "/idaas/sts/STS/GetToken", body={
            "relyingParty": partner, "thirdPartyId": "XporterOnDemand",
            "estab": self.estab, "password": p["password"]})
        assert status == 200, (status, body)
        return "Idaas " + body["token"]

    def check(self, ok, what):
        self.counts["checked answers"] += 1
        if not ok:
            self.failures.append(what)

    def read(self, token, path):
        status, body = call(self.base, "GET", f"/api/v1/School/{self.estab}/{path}", token)
        if status >= 500:
            self.failures.append(f"{path}: {status} {body}")
        return status, body

    def upload_turn(self, turn, everything):
        pupil = self.students[turn % len(self.students)]
        marker = f"Soak{turn}"
        rows = [dict(row, Forename=marker) if row["Id"] == pupil["Id"] else row
                for row in self.students]
        status, body = call(self.base, "POST", "/agent/v1/extracts", self.agent,
                            {"resultSets": {"Students": rows}})
        if status != 200:
            self.failures.append(f"upload {turn}: {status} {body}")
            return
        self.counts["uploads"] += 1
        _, answer = self.read(everything, f"Students/{pupil['Id']}")
        names = [row.get("Forename") for row in (answer or {}).get("Students", [])]
        self.check(names == [marker], f"upload {turn}: pupil {pupil['Id']} reads {names}")

    def consent_turn(self, turn, homework):
        scopes = WIDER if turn % 2 else GRANTED
        status, body = call(self.base, "PUT", "/admin/v1/consents/demo-homework", self.admin,
                            {"scopes": scopes})
        if status != 200:
            self.failures.append(f"consent {turn}: {status} {body}")
            return
        self.counts["consent changes"] += 1
        _, answer = self.read(homework, "Students?page=1&pageSize=50")
        rows = (answer or {}).get("Students", [])
        born = {"DateOfBirth" in row for row in rows}
        self.check(rows and born == {scopes is WIDER},
                   f"consent {turn} ({scopes}): DateOfBirth answered {born}")

    def opt_out_turn(self, turn, homework):
        pupil = self.students[(turn * 7) % len(self.students)]["Id"]
        for ids, expected in (([pupil], 0), ([], 1)):
            status, body = call(self.base, "PUT", "/admin/v1/opt-outs/demo-homework",
                                self.admin, {"studentIds": ids})
            if status != 200:
                self.failures.append(f"opt-out {turn}: {status} {body}")
                return
            self.counts["opt-out changes"] += 1
            _, answer = self.read(homework, f"Students/{pupil}")
            found = len((answer or {}).get("Students", []))
            self.check(found == expected,
                       f"opt-out {turn}: pupil {pupil} answered {found} times, not {expected}")

    def purge_turn(self):
        result = subprocess.run([self.args.bin, "--data-dir", self.args.data_dir, "purge"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.failures.append(f"purge: {result.stderr.strip()}")
        else:
            self.counts["purges"] += 1

    def mutate(self, until):
        everything, homework = self.token("demo-everything"), self.token("demo-homework")
        turn = 0
        while time.monotonic() < until and len(self.failures) < 20:
            turn += 1
            began = time.monotonic()
            self.upload_turn(turn, everything)
            self.consent_turn(turn, homework)
            self.opt_out_turn(turn, homework)
            if turn % 10 == 0:
                self.purge_turn()
            if turn % 100 == 0:
                # Tokens last an hour; a long soak fetches new ones.
                everything, homework = self.token("demo-everything"), self.token("demo-homework")
            # A paced run leaves each turn at least --pace seconds (at most until the end).
            time.sleep(max(0.0, min(began + self.args.pace, until) - time.monotonic()))
        # Leave the consent as the demo granted it.
        call(self.base, "PUT", "/admin/v1/consents/demo-homework", self.admin,
             {"scopes": GRANTED})

    def run(self):
        seconds = self.args.seconds
        everything = self.token("demo-everything")
        pupil = self.students[0]["Id"]
        paths = [f"/api/v1/School/{self.estab}/Students?page=1&pageSize=500",
                 f"/api/v1/School/{self.estab}/Students/{pupil}",
                 f"/api/v1/School/{self.estab}/Staff?page=1&pageSize=500",
                 f"/api/v1/School/{self.estab}/Contacts?page=1&pageSize=500"]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(WRK_SCRIPT)
        started = time.monotonic()
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c8", f"-d{seconds}s", "-s", lua.name, "-H",
             f"Authorization: {everything}", self.base, "--"] + paths,
            stdout=subprocess.PIPE, text=True)
        mutator = threading.Thread(target=self.mutate, args=(started + seconds,))
        mutator.start()
        # Long enough for the read caches to fill to their bound (64 MiB of rows and of
        # indexes) as uploads make new versions: growth after that is what counts.
        warm_up = max(20, seconds // 3)
        time.sleep(warm_up)
        warm = rss_kib(self.args.pid)
        peak = warm
        series = [warm]
        while mutator.is_alive():
            mutator.join(timeout=5)
            series.append(rss_kib(self.args.pid))
            peak = max(peak, series[-1])
        out, _ = wrk.communicate()
        end = rss_kib(self.args.pid)
        os.unlink(lua.name)
        summary = next(line for line in out.splitlines() if line.startswith("wrk-summary"))
        _, requests, non_2xx, p99_us = summary.split()
        requests, non_2xx = int(requests), int(non_2xx)
        elapsed = time.monotonic() - started
        print(f"soak: {elapsed:.0f} s on {os.cpu_count()} cores")
        print(f"  partner reads under load: {requests} ({requests / elapsed:.0f}/s), "
              f"p99 {int(p99_us) / 1000:.1f} ms, non-2xx {non_2xx}")
        for name, count in self.counts.items():
            print(f"  {name}: {count}")
        print(f"  server RSS: {warm / 1024:.1f} MiB after {warm_up} s warm-up, "
              f"{end / 1024:.1f} MiB at the end, {peak / 1024:.1f} MiB at most")
        print("  RSS every 5 s after warm-up (MiB): "
              + " ".join(f"{kib / 1024:.0f}" for kib in series))
        if non_2xx:
            self.failures.append(f"{non_2xx} reads under load were answered otherwise than 2xx")
        if self.counts["uploads"] == 0:
            self.failures.append("no upload completed")
        # A short run cannot tell the last of warm-up from growth: it catches gross growth
        # only; a run of five minutes or more holds memory to 10%.
        allowed = 0.10 if seconds >= 300 else 0.50
        if end > warm * (1 + allowed):
            self.failures.append(
                f"RSS grew from {warm} KiB to {end} KiB (over {allowed:.0%})")
        for failure in self.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return not self.failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--pace", type=float, default=0.0,
                        help="the least time a turn of changes takes (0: back to back)")
    args = parser.parse_args()
    sys.exit(0 if Soak(args).run() else 1)


if __name__ == "__main__":
    main()
