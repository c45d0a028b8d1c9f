#!/usr/bin/env bash
# Takes the README's screenshots of the real desktop client: starts uchat-server on a free
# loopback port with a throwaway data folder, scripts a few users (client/examples/
# screenshot_users.rs), opens `uchat` in a virtual X display (Xvfb) and drives it with
# xdotool, saving PNGs to docs/screenshots/. Needs: xvfb, xdotool, imagemagick, a CJK font
# (fonts-wqy-microhei), Mesa's OpenGL (libgl1-mesa-dri). Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/docs/screenshots"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/uchat-target}"
bin="$CARGO_TARGET_DIR/release"

for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || {
        echo "screenshots: $tool is missing (apt install xvfb xdotool imagemagick)" >&2
        exit 1
    }
done

cargo build --release --bin uchat-server --bin uchat --example screenshot_users -p server -p client

work=$(mktemp -d /tmp/uchat-shots.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server="127.0.0.1:$port"
"$bin/uchat-server" --data-dir "$work/server" --listen "$server" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# The scripted users stay online while their standard input is open.
mkfifo "$work/hold"
"$bin/examples/screenshot_users" "$server" "$work/amy" "$work/others" <"$work/hold" >"$work/users.log" 2>&1 &
pids+=($!)
exec 4>"$work/hold"
for _ in $(seq 300); do grep -q ready "$work/users.log" && break; sleep 0.1; done
grep -q ready "$work/users.log" || { cat "$work/users.log"; exit 1; }

display=":$((90 + RANDOM % 100))"
Xvfb "$display" -screen 0 1000x700x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
export DISPLAY=$display
sleep 1

# Starts the client and waits for its window; its id is in $window.
client() {
    "$bin/uchat" --server "$server" "$@" >>"$work/client.log" 2>&1 &
    client_pid=$!
    pids+=("$client_pid")
    window=""
    for _ in $(seq 100); do
        window=$(xdotool search --onlyvisible --name '^Uchat' 2>/dev/null | head -n 1 || true)
        [ -n "$window" ] && break
        sleep 0.1
    done
    [ -n "$window" ] || { cat "$work/client.log"; exit 1; }
    # With no window manager, keyboard focus must be given by hand.
    xdotool windowfocus "$window"
    sleep 1
}
shot() { sleep "${2:-1}"; import -window root "$out/$1.png"; echo "saved docs/screenshots/$1.png"; }
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.4; }
type_text() { xdotool type --delay 20 "$1"; sleep 0.3; }
quit() { kill "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; }

# Places on the 1000x700 window (no window manager: it opens at the top left).
login_password=(480 207); login_button=(340 255); register_button=(458 255)
field_username=(527 88); field_password=(527 125); field_repeat=(527 163); field_email=(527 200)
field_age=(527 237); back_to_login=(474 322); login_username=(480 169)
row() { echo 150 $((239 + 65 * $1)); } # the n-th contact row, from 0

# 1. The login window of a new user; 2. the registration form with field errors; 3. the
# fingerprint a server shows on first contact.
client --data-dir "$work/new" --lang en
shot login
click "${register_button[@]}"
for field in "field_username lily" "field_password secret1" "field_repeat secret2" \
    "field_email lily-at-home" "field_age 24"; do
    set -- $field
    place="$1[@]"
    click ${!place}
    type_text "$2"
done
xdotool mousemove 900 600
shot register-errors
click "${back_to_login[@]}"
click "${login_username[@]}"
type_text "lily"
click "${login_password[@]}"
type_text "secret1"
click "${login_button[@]}"
shot first-contact 2
quit

# 4. Amy's contacts: online dots, addresses, previews, unread badges, newest first; 5. a
# chat with styled text in Chinese and English and an inline image; 6. a group chat.
printf 'server=%s\nusername=amy\nlang=en\n' "$server" >"$work/amy/settings"
client --data-dir "$work/amy"
click "${login_password[@]}"
type_text "correct horse"
xdotool key Return
xdotool mousemove 900 600
shot contacts 3
click $(row 2) # 小明
xdotool mousemove 900 600
shot chat 2
click $(row 0) # the group
xdotool mousemove 900 600
shot group 2
quit

# 7. The Chinese interface.
client --data-dir "$work/amy" --lang zh
click "${login_password[@]}"
type_text "correct horse"
xdotool key Return
sleep 2
click $(row 2)
xdotool mousemove 900 600
shot chinese 2
quit
