# Shared by the command-line tests (source it): fail MESSAGE; expect CODE NEEDLE -- command...
# runs the command, requires its exit code and (unless NEEDLE is empty) that its output contains
# NEEDLE, leaves the output in $out and counts passes in $pass.
pass=0
fail() { echo "FAIL: $*"; exit 1; }
expect() {
  local code=$1 needle=$2; shift 3
  out=$("$@" 2>&1); rc=$?
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $out"
  [ -z "$needle" ] || echo "$out" | grep -q -- "$needle" || fail "'$*' output lacks '$needle': $out"
  pass=$((pass + 1))
}
