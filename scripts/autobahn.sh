#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzing client against a WebSocket server.
#
# Usage: scripts/autobahn.sh URL [SUMMARY.md]
#
#   URL         ws://HOST:PORT of an already running server (echoes text and binary).
#   SUMMARY.md  where to write the markdown summary (or set AUTOBAHN_SUMMARY).
#
# Environment:
#   AUTOBAHN_CACHE    cache dir for the Python 2.7 venv and reports (default: <repo>/target/autobahn)
#   AUTOBAHN_AGENT    agent name shown in the report (default: ws-edge)
#   AUTOBAHN_CASES    space-separated case patterns (default: "1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 12.* 13.*")
#   AUTOBAHN_SUMMARY  markdown summary path (the second argument wins)
#   PYTHON2           a Python 2.7 interpreter (default: pyenv's 2.7.18)
#
# Cases 12.* and 13.* need permessage-deflate (the echo component accepts it);
# against a server without it they are UNIMPLEMENTED, not FAILED.
# Exit status: 0 when no case has behavior FAILED, 1 when some case FAILED,
# 2 on usage or setup errors.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    [[ $# -lt 1 ]] && exit 2 || exit 0
fi

url="$1"
summary="${2:-${AUTOBAHN_SUMMARY:-}}"
case "$url" in
    ws://*) ;;
    *) echo "autobahn.sh: URL must start with ws:// (got '$url')" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${AUTOBAHN_CACHE:-$repo/target/autobahn}"
agent="${AUTOBAHN_AGENT:-ws-edge}"
cases="${AUTOBAHN_CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 12.* 13.*}"
venv="$cache/venv27"
mkdir -p "$cache"

# --- 1. Python 2.7 venv with autobahntestsuite (idempotent) -----------------
if [[ ! -x "$venv/bin/wstest" ]]; then
    py2="${PYTHON2:-}"
    if [[ -z "$py2" ]]; then
        if command -v pyenv >/dev/null 2>&1 && [[ -x "$(pyenv root)/versions/2.7.18/bin/python" ]]; then
            py2="$(pyenv root)/versions/2.7.18/bin/python"
        elif command -v python2.7 >/dev/null 2>&1; then
            py2="$(command -v python2.7)"
        else
            echo "autobahn.sh: no Python 2.7 found (install pyenv 2.7.18 or set PYTHON2)" >&2
            exit 2
        fi
    fi
    echo "autobahn.sh: creating Python 2.7 venv in $venv (once)" >&2
    rm -rf "$venv" "$cache/virtualenv-pkg"
    python3 -m pip install --quiet --disable-pip-version-check \
        --target "$cache/virtualenv-pkg" 'virtualenv==20.21.1'
    PYTHONPATH="$cache/virtualenv-pkg" python3 -m virtualenv --quiet -p "$py2" "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'autobahntestsuite==25.10.1'
    if [[ ! -x "$venv/bin/wstest" ]]; then
        echo "autobahn.sh: wstest missing after install" >&2
        exit 2
    fi
fi

# --- 2. Is the server there? ----------------------------------------------------
hostport="${url#ws://}"
hostport="${hostport%%/*}"
host="${hostport%:*}"
port="${hostport##*:}"
host="${host#[}"
host="${host%]}"
if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; then
    echo "autobahn.sh: cannot connect to $host:$port" >&2
    exit 2
fi

# --- 3. Fuzzing client spec ---------------------------------------------------
run="$cache/run-$agent"
rm -rf "$run"
mkdir -p "$run/reports"
case_json=""
for c in $cases; do
    case_json+="${case_json:+, }\"$c\""
done
cat >"$run/fuzzingclient.json" <<EOF
{
  "outdir": "$run/reports",
  "servers": [{ "agent": "$agent", "url": "$url" }],
  "cases": [$case_json],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF

# --- 4. Run ---------------------------------------------------------------
echo "autobahn.sh: wstest -m fuzzingclient against $url (cases: $cases)" >&2
start=$(date +%s)
(cd "$run" && "$venv/bin/wstest" -m fuzzingclient -s fuzzingclient.json) >"$run/wstest.log" 2>&1 || {
    echo "autobahn.sh: wstest exited with an error; last lines of $run/wstest.log:" >&2
    tail -n 20 "$run/wstest.log" >&2
    exit 2
}
elapsed=$(($(date +%s) - start))

# --- 5. Parse index.json --------------------------------------------------------
python3 - "$run/reports/index.json" "$agent" "$url" "$elapsed" "$summary" "$cases" <<'PY'
import json
import sys
from collections import Counter, defaultdict

index_path, agent, url, elapsed, summary_path, cases = sys.argv[1:7]
with open(index_path) as f:
    index = json.load(f)
if not index.get(agent):
    sys.stderr.write("autobahn.sh: no results for agent %r in %s (server unreachable?)\n" % (agent, index_path))
    sys.exit(2)
results = index[agent]

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]

def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))

def category(case_id):
    return case_id.split(".")[0]

per_cat = defaultdict(Counter)
behavior = Counter()
close = Counter()
failed = []
for case_id in sorted(results, key=case_key):
    r = results[case_id]
    b = r.get("behavior", "?")
    bc = r.get("behaviorClose", "?")
    per_cat[category(case_id)][b] += 1
    behavior[b] += 1
    close[bc] += 1
    if b == "FAILED":
        failed.append((case_id, bc, r.get("remoteCloseCode")))

extra = sorted(set(behavior) - set(BEHAVIORS))
cols = BEHAVIORS + extra
lines = []
lines.append("# Autobahn|Testsuite fuzzingclient summary")
lines.append("")
lines.append("- agent: `%s`, url: `%s`" % (agent, url))
lines.append("- autobahntestsuite 25.10.1 (Python 2.7), cases %s" % ", ".join(cases.split()))
lines.append("- %d cases in %s s" % (sum(behavior.values()), elapsed))
lines.append("")
lines.append("| category | cases | " + " | ".join(cols) + " |")
lines.append("|---|---:|" + "---:|" * len(cols))
for cat in sorted(per_cat, key=int):
    c = per_cat[cat]
    lines.append("| %s | %d | " % (cat, sum(c.values())) + " | ".join(str(c.get(k, 0)) for k in cols) + " |")
lines.append("| **total** | %d | " % sum(behavior.values()) + " | ".join(str(behavior.get(k, 0)) for k in cols) + " |")
lines.append("")
lines.append("behaviorClose: " + ", ".join("%s %d" % (k, v) for k, v in sorted(close.items())))
if failed:
    lines.append("")
    lines.append("FAILED cases: " + ", ".join("%s (close %s, code %s)" % f for f in failed))
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
if summary_path:
    with open(summary_path, "w") as f:
        f.write(text)
sys.exit(1 if failed else 0)
PY
