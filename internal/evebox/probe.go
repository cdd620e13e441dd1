package evebox

// probeScript is the debug service of the box: from the machine's PID
// namespace, with moor's own binary (/init, at /hostfs/init) and state
// root, it waits for the apps, prints their limits and the machine's
// figures, then kills app1 (a child of the task manager: its reaper
// records the exit and the app comes back, restarts 1), kills pillar (the
// apps, orphaned, are handed to PID 1; the restarted task manager adopts
// them: same PIDs, still three tasks) and kills app2 (PID 1 reaps it and
// records its exit; the task manager starts it again). Every finding is a
// "box: " line on the console.
const probeScript = `trap 'exit 0' TERM
moor() { /hostfs/init --root /run/moor "$@" 2>/dev/null; }
top() { sed -n "s/^  \"$1\": \"*\([^\",]*\)\"*,*\$/\1/p"; }
app() { moor --namespace eve-user-apps state "$1" | top "$2"; }
svc() { moor --namespace services.linuxkit state "$1" | top "$2"; }
restarts() { r=$(app "$1" restarts); echo "${r:-0}"; }
running() { [ "$(app "$1" status)" = running ]; }
waitfor() { n=0; until eval "$2"; do n=$((n+1)); if [ $n -gt 900 ]; then echo "box: timed out waiting for $1"; exit 1; fi; sleep 0.2; done; }
ms() { awk '{printf "%d", $1*1000}' /proc/uptime; }

waitfor "the apps to run" 'running app1 && running app2 && running app3'
echo "box: apps running uptime_ms=$(ms)"
for a in app1 app2 app3; do
  echo "box: $a cgroup=/eve/apps/$a memory.max=$(cat /sys/fs/cgroup/eve/apps/$a/memory.max) cpu.max=$(cat /sys/fs/cgroup/eve/apps/$a/cpu.max | tr ' ' /)"
done
extra=0
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = 1 ] && continue
  [ -s "$p/cmdline" ] || continue
  cg=$(sed -n 's/^0:://p' "$p/cgroup")
  case "$cg" in /eve/apps/*|/eve/services/*) ;; *) extra=$((extra+1)); echo "box: extra process $pid in $cg: $(tr '\0' ' ' < "$p/cmdline")";; esac
done
echo "box: pid1_rss_kib=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' /proc/1/status) extra_procs=$extra"

p=$(app app1 pid); kill -9 "$p"; echo "box: killed app1 pid=$p"
waitfor "app1 to come back" 'running app1 && [ "$(restarts app1)" = 1 ]'
echo "box: app1 back pid=$(app app1 pid) restarts=$(restarts app1)"

before="$(app app1 pid) $(app app2 pid) $(app app3 pid)"
pp=$(svc pillar pid); rm -f /run/taskmgr/status.json; kill -9 "$pp"; echo "box: killed pillar pid=$pp"
waitfor "pillar to come back" '[ "$(svc pillar status)" = running ] && [ "$(svc pillar pid)" != "$pp" ] && [ -e /run/taskmgr/status.json ]'
after="$(app app1 pid) $(app app2 pid) $(app app3 pid)"
echo "box: pillar back pid=$(svc pillar pid) apps before=[$before] after=[$after] tasks=$(moor --namespace eve-user-apps list -q | wc -l)"

p=$(app app2 pid); kill -9 "$p"; echo "box: killed app2 pid=$p"
waitfor "app2 to come back" 'running app2 && [ "$(restarts app2)" = 1 ]'
echo "box: app2 back pid=$(app app2 pid) restarts=$(restarts app2)"
echo "box: done"
while :; do sleep 1; done
`
