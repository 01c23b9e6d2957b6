#!/usr/bin/env bash
# Runs the command-line programs with bad arguments and checks that each
# exits with the expected status and prints a message containing the
# expected text. No case gets as far as opening a socket.
#
#   bad_input.sh NEWSLETTER SANDBOX ECHO_BOT SIGNUP_BOT
set -u

newsletter=$1
sandbox=$2
echo_bot=$3
signup_bot=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset DATABASE_URL REDIS_URL SLUICE_API_URL WEBHOOK_SECRET NEWSLETTER_ADMINS

failures=0

# expect STATUS TEXT PROGRAM ARGS...: runs PROGRAM ARGS (at most 30 s) and
# checks its exit status and that stdout or stderr contains TEXT.
expect() {
  local status=$1 text=$2
  shift 2
  local output actual
  output=$(timeout 30 "$@" 2>&1 </dev/null)
  actual=$?
  if [[ $actual -ne $status ]]; then
    echo "FAILED: $* exited with $actual, expected $status; output: $output"
    failures=$((failures + 1))
  elif [[ $output != *"$text"* ]]; then
    echo "FAILED: $* printed no \"$text\"; output: $output"
    failures=$((failures + 1))
  else
    echo "ok: $*"
  fi
}

# newsletter: numbers out of range, unknown log level, malformed URLs.
export BOT_TOKEN=1:TEST
expect 2 "invalid value '-1' for --global-rate: expected a whole number from 1 to 1000" \
  "$newsletter" --global-rate -1
expect 2 "invalid value '0' for --global-rate" "$newsletter" --global-rate 0
expect 2 "invalid user id '-5' in --admins" "$newsletter" --token 123456789:AAHsandboxTokenForLocalTests000000 \
  --admins=-5
expect 2 "--admins needs at least one user id" "$newsletter" --token 123456789:AAHsandboxTokenForLocalTests000000 \
  --admins ''
expect 2 "invalid value '1001' for --global-rate" "$newsletter" --global-rate=1001
expect 2 "invalid value 'abc' for --global-rate" "$newsletter" --global-rate abc
expect 2 "invalid value '-5' for --broadcast-concurrency" "$newsletter" --broadcast-concurrency -5
expect 2 "invalid value '0' for --progress-interval: expected a whole number from 1 to 3600" \
  "$newsletter" --progress-interval 0
expect 2 "invalid value '99999999999999999999' for --progress-interval" \
  "$newsletter" --progress-interval 99999999999999999999
expect 2 "invalid value '2000' for --max-concurrent-updates" "$newsletter" --max-concurrent-updates 2000
expect 2 "invalid value '-1' for --blocking-threads" "$newsletter" --blocking-threads -1
expect 2 "invalid value '-1' for --webhook-port: expected a whole number from 0 to 65535" \
  "$newsletter" --webhook-port -1
expect 2 "invalid value 'verbose' for --log-level: expected one of trace, debug, info, warn, error, critical, off" \
  "$newsletter" --log-level verbose
expect 2 "--db: invalid database URL \`sqlite://\`: the file path is empty" "$newsletter" --db sqlite://
expect 2 "--db: invalid database URL \`mysql://x\`: unsupported scheme" "$newsletter" --db mysql://x
expect 2 "--db: invalid database URL \`nonsense\`: missing scheme" "$newsletter" --db nonsense
expect 2 "--redis: invalid Redis URL" "$newsletter" --redis http://x
expect 2 "--db: invalid database URL parameter busy_timeout=\`4294967296\`: expected at most 2147483647 ms" \
  "$newsletter" --db "sqlite:///x.db?busy_timeout=4294967296"
expect 2 "--db: invalid database URL parameter readers=\`-1\`" "$newsletter" --db "sqlite:///x.db?readers=-1"
expect 2 "invalid value 'ftp://x' for --api-url (or SLUICE_API_URL): it must start with http:// or https://" \
  "$newsletter" --api-url ftp://x
expect 2 "its port is not a number from 1 to 65535" "$newsletter" --api-url http://127.0.0.1:99999
expect 2 "invalid token: it contains a space at position 8" "$newsletter" --token "123:abc def"
expect 2 "invalid token: a Telegram bot token starts with the bot id" "$newsletter" --token not-a-token
expect 0 "--global-rate" "$newsletter" --help
unset BOT_TOKEN

# sluice-sandbox: port range, other numbers, log level, scenario fields.
expect 2 "invalid value '-1' for --port: expected a whole number from 0 to 65535" "$sandbox" --port -1
expect 2 "invalid value '65536' for --port" "$sandbox" --port 65536
expect 2 "invalid value '-1' for --seed" "$sandbox" --seed -1
expect 2 "invalid value '-1' for --max-recorded-calls" "$sandbox" --max-recorded-calls -1
expect 2 "invalid value '0' for --max-messages-per-chat" "$sandbox" --max-messages-per-chat 0
expect 2 "invalid value '0' for --first-update-id" "$sandbox" --first-update-id 0
expect 2 "invalid value '' for --token" "$sandbox" --token ''
expect 2 "invalid value 'a/b' for --token" "$sandbox" --token a/b
expect 2 "--tls-cert and --tls-key go together" "$sandbox" --tls-cert cert.pem
expect 2 "invalid value 'localhost' for --address" "$sandbox" --address localhost
expect 2 "invalid value 'verbose' for --log-level" "$sandbox" --log-level verbose
echo '{"users": [], "colour": "blue"}' >"$work/top.json"
expect 1 "$work/top.json: scenario: unknown field \"colour\"" "$sandbox" --port 0 --scenario "$work/top.json"
echo '{"users": [{"id": 5, "firstname": "A"}]}' >"$work/user.json"
expect 1 "$work/user.json: user: unknown field \"firstname\"" "$sandbox" --port 0 --scenario "$work/user.json"

# echo_bot and signup_bot: unknown options.
expect 2 "unknown option --bogus" "$echo_bot" --bogus
expect 2 "unknown option --bogus" "$echo_bot" --bogus=1
expect 2 "missing value for --token" "$echo_bot" --token
expect 2 "invalid value 'maybe' for --flood-control" "$echo_bot" --flood-control=maybe
expect 2 "invalid value '0' for --max-in-flight" "$echo_bot" --max-in-flight 0
expect 2 "invalid value '-1' for --max-in-flight" "$echo_bot" --max-in-flight=-1
expect 2 "invalid value for --journal" "$echo_bot" --journal mysql://x
expect 2 "invalid value for --offsets" "$echo_bot" --offsets mysql://x
expect 2 "invalid token: a Telegram bot token starts with the bot id" "$echo_bot" \
  --token abcdefghijklmnopqrstuvwxyz0123456789
expect 2 "invalid token" "$echo_bot" --token=-5:AAHsandboxTokenForLocalTests000000
expect 2 "invalid value 'notaurl' for --api-url" "$echo_bot" --token 123456789:AAHsandboxTokenForLocalTests000000 \
  --api-url notaurl
expect 2 "invalid value 'http://' for --api-url (or SLUICE_API_URL): it has no host" "$echo_bot" \
  --token 123456789:AAHsandboxTokenForLocalTests000000 --api-url http://
expect 2 "its port is not a number from 1 to 65535" "$echo_bot" \
  --token 123456789:AAHsandboxTokenForLocalTests000000 --api-url http://127.0.0.1:70000
expect 2 "its port is not a number from 1 to 65535" "$echo_bot" \
  --token 123456789:AAHsandboxTokenForLocalTests000000 --api-url http://127.0.0.1:99999
expect 2 "invalid token: it contains a space at position 14" "$echo_bot" --token "123456789:AAH sandbox"
expect 2 "invalid value '/nonexistent/ca.pem' for --ca-file: the file cannot be read" "$echo_bot" \
  --token 123456789:AAHsandboxTokenForLocalTests000000 --api-url https://127.0.0.1:1 --ca-file /nonexistent/ca.pem
expect 2 "--journal keeps the offset in its own database" "$echo_bot" --journal sqlite:///x.db --offsets memory
expect 2 "invalid value '70000' for --webhook-port" "$echo_bot" --webhook-port 70000
expect 2 "--webhook-port needs --webhook-secret" "$echo_bot" --webhook-port 8443
expect 2 "need --webhook-port" "$echo_bot" --webhook-reply on
expect 2 "--journal applies to long polling only" "$echo_bot" --webhook-port 0 --webhook-secret s \
  --journal sqlite:///x.db
expect 2 "invalid value for --webhook-secret" "$echo_bot" --webhook-port 0 --webhook-secret 'a b'
expect 2 "invalid value 'maybe' for --delete-webhook" "$echo_bot" --delete-webhook maybe
expect 2 "--delete-webhook applies to long polling only" "$echo_bot" --delete-webhook on \
  --webhook-port 0 --webhook-secret s
expect 2 "invalid value '' for --token" "$echo_bot" --token=
expect 2 "--max-in-flight needs a token" env -u BOT_TOKEN "$echo_bot" --max-in-flight 8
expect 2 "unknown option --bogus" "$signup_bot" --bogus
expect 2 "expected at most one argument" "$signup_bot" a.db b.db

if [[ $failures -ne 0 ]]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all cases passed"
