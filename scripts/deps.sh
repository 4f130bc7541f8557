#!/usr/bin/env bash
# deps.sh: the system packages the tests need, from Debian's archive:
# mosquitto (a real broker for the publisher, shadow and smoke tests),
# rabbitmq-server (its MQTT plugin and erlang-base's epmd) and nats-server
# (MQTT with JetStream) for the publisher's tests against other brokers,
# qemu-user-static (the GOARCH=arm tests and smoke), shellcheck (the
# install and maintainer scripts), systemd (systemd-analyze, sysusers) and
# dpkg (dpkg-deb, dpkg --root for the package test). Installs what is
# missing when run as root; otherwise prints the command to run.
set -euo pipefail

# command  package
need=(
	"mosquitto mosquitto"
	"mosquitto_sub mosquitto-clients"
	"rabbitmq-server rabbitmq-server"
	"epmd erlang-base"
	"nats-server nats-server"
	"qemu-arm-static qemu-user-static"
	"shellcheck shellcheck"
	"systemd-analyze systemd"
	"systemd-sysusers systemd"
	"dpkg-deb dpkg"
	"openssl openssl"
)

missing=()
for n in "${need[@]}"; do
	read -r cmd pkg <<<"$n"
	# mosquitto lives in /usr/sbin, which a non-root PATH may lack.
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
		case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; install with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The mosquitto, rabbitmq-server and nats-server packages may start system
# brokers (1883, 5672 with epmd on 4369, 4222); tests start their own on
# free ports, with their own epmd and node name, and leave those alone.
echo "deps: installed ${missing[*]}"
