# Run inside a worker container by scripts/container-test (bash -s): succeeds when Chromium
# runs with its sandbox — no Chromium process was started with --no-sandbox, and some of its
# processes (the zygote, renderers) live in a PID namespace of their own, which only the
# namespace sandbox makes. A sandboxed process rewrites its command line into one
# space-separated string, so arguments are read as words.
nested=0
for p in /proc/[0-9]*; do
    args=$(tr "\0 " "\n\n" <"$p/cmdline" 2>/dev/null) || continue
    case "$(head -n 1 <<<"$args")" in *chromium*) ;; *) continue ;; esac
    if grep -qx -- --no-sandbox <<<"$args"; then
        echo "Chromium started without its sandbox: $(tr "\n" " " <<<"$args" | cut -c1-200)"
        exit 1
    fi
    if grep -Eqx -- "--type=(zygote|renderer)" <<<"$args"; then
        pids=$(awk '/^NSpid:/ {print NF - 1}' "$p/status" 2>/dev/null)
        [ "${pids:-1}" -gt 1 ] && nested=$((nested + 1))
    fi
done
[ "$nested" -gt 0 ] || { echo "no Chromium process in a PID namespace of its own"; exit 1; }
