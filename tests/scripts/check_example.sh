#!/usr/bin/env bash
# Runs an example with `mstream run` and checks what a user sees.
#   check_example.sh hello MSTREAM EXAMPLES_DIR           exact output of hello.tcl
#   check_example.sh chat MSTREAM EXAMPLES_DIR            the dispatcher follows the talker,
#                                                         every display shows one conversation
#   check_example.sh hello-no-sites MSTREAM EXAMPLES_DIR  hello.tcl with --sites 0 fails cleanly
# Exits 0 when the check passes; otherwise prints what differs and exits 1.
set -u
mode=$1 mstream=$2 examples=$3
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

# Bounded even if ctest's own timeout never fires; the daemons die with their run.
run() { timeout -k 5 90 "$mstream" run "$@" >"$work/out" 2>"$work/err"; echo $? >"$work/rc"; }
fail() {
  echo "FAIL: $*"
  echo "--- exit code: $(cat "$work/rc")"
  echo "--- stdout (first 60 lines):"; head -n 60 "$work/out"
  echo "--- stderr:"; cat "$work/err"
  exit 1
}

case $mode in
  hello)
    run "$examples/hello.tcl"
    [ "$(cat "$work/rc")" = 0 ] || fail "hello.tcl did not exit 0"
    printf '[2] I am at 2\n[2] Hello world\n[1] I am at 1\n' >"$work/expected"
    cmp -s "$work/expected" "$work/out" || fail "hello.tcl printed other lines than:
$(cat "$work/expected")"
    [ -s "$work/err" ] && fail "hello.tcl wrote to stderr"
    ;;
  chat)
    run "$examples/chat.tcl"
    [ "$(cat "$work/rc")" = 0 ] || fail "chat.tcl did not exit 0"
    [ -s "$work/err" ] && fail "chat.tcl wrote to stderr"
    # The dispatcher's lines, in order, wherever it printed them.
    grep -E '^\[[0-9]+\] dispatcher M is now at site' "$work/out" >"$work/moves"
    for s in 1 2 3; do echo "[$s] dispatcher M is now at site $s"; done >"$work/expected"
    cmp -s "$work/expected" "$work/moves" || fail "the dispatcher did not follow the talker 1, 2, 3"
    [ "$(tail -n 1 "$work/out")" = "chat: 150 lines said" ] || fail "the last line is not the total"
    # Display S<p> runs at site p and prints only what M sent it: "In<q>: line <i>".
    for p in 1 2 3; do
      awk -v p="$p" 'index($0, "[" p "] In") == 1 { print substr($0, length(p) + 4) }' \
        "$work/out" >"$work/display$p"
    done
    lines=$(wc -l <"$work/display1")
    [ "$lines" -eq 150 ] || fail "display S1 showed $lines lines, not 150"
    for p in 2 3; do
      cmp -s "$work/display1" "$work/display$p" || fail "display S$p differs from S1:
$(diff "$work/display1" "$work/display$p" | head -20)"
    done
    # Every line said is shown once and in the order said: in round r participant p says
    # lines 1..40 if it is the talker (r = p), else 1..5.
    awk '{ split($0, f, /[: ]+/); said[f[1]] = said[f[1]] " " f[3] }
         END { for (p = 1; p <= 3; p++) {
                 want = ""
                 for (r = 1; r <= 3; r++) for (i = 1; i <= (r == p ? 40 : 5); i++) want = want " " i
                 if (said["In" p] != want) { print "In" p " said, as shown:" said["In" p]; bad = 1 }
               }
               exit bad }' \
      "$work/display1" >"$work/order" || fail "$(cat "$work/order")"
    ;;
  hello-no-sites)
    run --sites 0 "$examples/hello.tcl"
    rc=$(cat "$work/rc")
    [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "expected a clean failure"
    grep -qF 'no such site 2' "$work/err" || fail "no \"no such site 2\" on stderr"
    grep -qF '"stream_move bar 2"' "$work/err" || fail "the failing command is not named"
    grep -qE '\(file ".*hello\.tcl" line [0-9]+\)' "$work/err" || fail "the error has no line"
    [ -s "$work/out" ] && fail "nothing should reach stdout"
    ;;
  *)
    echo "usage: check_example.sh hello|chat|hello-no-sites MSTREAM EXAMPLES_DIR" >&2
    exit 2
    ;;
esac
echo "ok: $mode"
