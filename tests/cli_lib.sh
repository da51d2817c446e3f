# Shared by the command-line tests (source it): fail MESSAGE; expect CODE NEEDLE -- command...
# runs the command, requires its exit code and (unless NEEDLE is empty) that its output contains
# NEEDLE, leaves the output in $out and counts passes in $pass; cli_tmpdir makes $tmp, removed
# at exit.
# Outputs are searched with here-strings (grep -q PATTERN <<< "$out"), never `echo "$out" |
# grep -q`: grep -q exits at the first match, echo then dies of SIGPIPE writing the rest of a long
# output, and under pipefail the check failed at random (CI: "output lacks 'unknown command'"
# for an output that held it).
pass=0
fail() { echo "FAIL: $*"; exit 1; }
expect() {
  local code=$1 needle=$2; shift 3
  out=$("$@" 2>&1); rc=$?
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $out"
  [ -z "$needle" ] || grep -q -- "$needle" <<< "$out" || fail "'$*' output lacks '$needle': $out"
  pass=$((pass + 1))
}
cli_tmpdir() {
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
}
