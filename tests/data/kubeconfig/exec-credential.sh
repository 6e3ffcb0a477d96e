#!/bin/sh
# A test exec credential plugin: prints an ExecCredential whose token is the
# argument after --token (or $EXEC_TOKEN_FILE's content when set), counts its
# runs in $EXEC_COUNT_FILE, adds expirationTimestamp $EXEC_EXPIRY when set,
# and fails unless KUBERNETES_EXEC_INFO and the kubeconfig's env came through.
token=""
while [ $# -gt 0 ]; do
    case "$1" in --token) token="$2"; shift ;; esac
    shift
done
[ -n "$EXEC_TOKEN_FILE" ] && token=$(cat "$EXEC_TOKEN_FILE")
[ -n "$EXEC_COUNT_FILE" ] && echo run >>"$EXEC_COUNT_FILE"
case "$KUBERNETES_EXEC_INFO" in *'"kind":"ExecCredential"'*) ;; *) echo "no KUBERNETES_EXEC_INFO" >&2; exit 3 ;; esac
[ "$EXEC_GREETING" = hello ] || { echo "env not passed" >&2; exit 4; }
expiry=""
[ -n "$EXEC_EXPIRY" ] && expiry=",\"expirationTimestamp\":\"$EXEC_EXPIRY\""
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"%s}}\n' "$token" "$expiry"
