#!/bin/bash
# Inside `apmatrix exec --udev`: libvirtd 9.0 with only its node-device
# driver (docs/udev-libvirt.md §5.5: the monolithic daemon, its driver
# directory holding just that module, no configuration, its sockets in the
# private /run), then the virsh commands of the libvirt test, each section
# headed by `== NAME` and ended by `rc=STATUS`. Usage: libvirt_nodedev.sh WORKDIR
set -u
work=$1
mkdir -p "$work/drivers"
ln -sf /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_nodedev.so "$work/drivers/"
export LIBVIRT_DRIVER_DIR="$work/drivers"
/usr/sbin/libvirtd > "$work/libvirtd.log" 2>&1 &
daemon=$!
trap 'kill $daemon; wait $daemon' EXIT
virsh="virsh -c nodedev:///system"
for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
# Enumeration runs in a thread of its own after the socket appears.
for _ in $(seq 100); do $virsh nodedev-list --cap ap_matrix 2>/dev/null | grep -q ap_matrix && break; sleep 0.1; done

section() { local name=$1; shift; echo "== $name"; "$@" 2>&1; echo "rc=$?"; }
new=mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix
bad=mdev_9a1c5e2f_3b4d_4e6f_8a7b_0c1d2e3f4a5b_matrix
# libvirt learns of a started or stopped mdev from the uevent alone: wait for it.
await() { for _ in $(seq 50); do [ "$($virsh nodedev-list --cap mdev | grep -c "$1")" = "$2" ] && return; sleep 0.1; done; }

for cap in ap_card ap_queue ap_matrix mdev; do section "list $cap" $virsh nodedev-list --cap $cap; done
for dev in ap_card05 ap_05_0004 ap_matrix mdev_62177883_f1bb_47f0_914d_32a22e3a8804_matrix; do
    section "dumpxml $dev" $virsh nodedev-dumpxml $dev
done
section "define" $virsh nodedev-define "$work/new.xml"
section "start" $virsh nodedev-start $new
await $new 1
section "list after start" $virsh nodedev-list --cap mdev
section "dumpxml started" $virsh nodedev-dumpxml $new
section "matrix" cat /sys/devices/vfio_ap/matrix/783e6dbb-ea0e-411f-94e2-717eaad438bf/matrix
section "destroy" $virsh nodedev-destroy $new
await $new 0
section "list after destroy" $virsh nodedev-list --cap mdev
section "inactive" $virsh nodedev-list --cap mdev --inactive
section "define conflicting" $virsh nodedev-define "$work/conflicting.xml"
section "start conflicting" $virsh nodedev-start $bad
section "undefine" sh -c "$virsh nodedev-undefine $new && $virsh nodedev-undefine $bad"
