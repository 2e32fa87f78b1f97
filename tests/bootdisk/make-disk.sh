#!/bin/bash
# make-disk.sh NAME HOSTNAME PUBKEY OUT.qcow2
#
# The lab's test disks. This is the team's stand-in disk maker
# (fixtures/bootdisk/make-disk.sh of the shared workspace), kept here so
# that CI, which has only this repository, and the tests module can make
# them. One change: the
# first network card takes its address, router and name server by DHCP
# (busybox udhcpc, sending the disk's hostname), as a bootc disk does with
# NetworkManager, where the original set a static 10.0.2.15. ETH1_IP is
# unchanged.
#
# Builds a tiny BIOS-bootable "stand-in VM" disk from Debian bookworm packages only:
#   MBR (GRUB i386-pc boot.img) + GRUB core.img in the post-MBR gap + one ext4 partition
#   holding /boot/{vmlinuz,initrd.img,grub/}, a busybox root, dropbear, /etc/hostname, ...
# No loop devices, no mounts, no root-only tricks except chown inside the staging dir
# (mke2fs -d copies ownership from the staging dir).
#
# PUBKEY: path to an OpenSSH public key file, or the key text itself.
# Env knobs:
#   SSH_USER      login user that gets PUBKEY (default: core)
#   OVERLAY_DIR   directory copied verbatim onto the root fs (e.g. etc/kafka-bootc/tls/ca.crt)
#   CA_CERT       file to install as /etc/kafka-bootc/tls/ca.crt (default: placeholder text)
#   ETH1_IP       CIDR for an optional 2nd NIC (inter-VM segment), e.g. 10.10.0.11/24
#   DISK_MB       raw disk size in MiB (default 48)
#   KCMDLINE      extra kernel args (default: console=ttyS0 quiet init_on_alloc=0 page_alloc.shuffle=0)
#   CACHE         download/extract cache (default $TMPDIR/bootdisk-cache)
set -euo pipefail

[ $# -eq 4 ] || { echo "usage: $0 NAME HOSTNAME PUBKEY OUT.qcow2" >&2; exit 2; }
NAME=$1 HOST=$2 PUBKEY=$3 OUT=$4
SSH_USER=${SSH_USER:-core}
DISK_MB=${DISK_MB:-48}
CACHE=${CACHE:-${TMPDIR:-/tmp}/bootdisk-cache}
ETH1_IP=${ETH1_IP:-}
PKGS="busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 zlib1g grub-pc-bin grub-common"

log() { echo "[make-disk] $*" >&2; }

# ---- host tools (Debian) ----------------------------------------------------
need=()
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v cpio     >/dev/null || need+=(cpio)
command -v mke2fs   >/dev/null || need+=(e2fsprogs)
command -v xz       >/dev/null || need+=(xz-utils)
# grub-mkimage, run from the extracted grub-common on the host, links
# libdevmapper and liblzma: listed here, not found by ldd's output, which
# a grep -q under pipefail can miss (ldd dies of SIGPIPE, and the test is
# false).
dpkg -s libdevmapper1.02.1 >/dev/null 2>&1 || need+=(libdevmapper1.02.1)
dpkg -s liblzma5           >/dev/null 2>&1 || need+=(liblzma5)
if [ ${#need[@]} -gt 0 ]; then
  log "installing host tools: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

# ---- download + extract guest packages (cached) ------------------------------
mkdir -p "$CACHE/debs"
KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$KPKG" ] || { echo "cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
(
  cd "$CACHE/debs"
  missing=()
  for p in $KPKG $PKGS; do ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get download ${missing[*]}"
    apt-get download "${missing[@]}" >&2 2>/dev/null || { apt-get update >&2; apt-get download "${missing[@]}" >&2; }
  fi
)
X="$CACHE/extract"
stamp="$X/.stamp-$(cd "$CACHE/debs" && ls *.deb | md5sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  log "extracting debs into $X"
  rm -rf "$X"; mkdir -p "$X"
  for d in "$CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$X"; done
  touch "$stamp"
fi
KVER=$(ls "$X/lib/modules" | head -1)
XLIB="$X/lib/x86_64-linux-gnu:$X/usr/lib/x86_64-linux-gnu"

# ---- staging -------------------------------------------------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/bootdisk-work-$NAME.XXXX")
trap 'rm -rf "$W"' EXIT
R=$W/root I=$W/initrd
mkdir -p "$R"/{bin,sbin,usr/sbin,usr/bin,etc,proc,sys,dev,run,tmp,var/log,root,boot/grub,lib/x86_64-linux-gnu,lib64} \
         "$I"/{bin,dev,proc,sys,newroot,lib/modules}
chmod 1777 "$R/tmp"; chmod 700 "$R/root"

# busybox (static) in both trees, applet symlinks
for t in "$R" "$I"; do
  cp "$X/bin/busybox" "$t/bin/busybox"
  for a in $("$X/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$t/bin/$a"; done
done

# kernel modules -> initramfs (load order resolves deps; modules are uncompressed in bookworm)
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net virtio-rng"
for m in $MODS; do
  f=$(find "$X/lib/modules/$KVER" -name "$m.ko" -o -name "${m//-/_}.ko" | head -1)
  [ -n "$f" ] || { echo "module $m not found" >&2; exit 1; }
  cp "$f" "$I/lib/modules/"
done
cat > "$I/init" <<EOF
#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $MODS; do insmod /lib/modules/\$m.ko 2>/dev/null || insmod /lib/modules/\$(echo \$m | tr - _).ko; done
root=/dev/vda1
for a in \$(cat /proc/cmdline); do case \$a in root=/dev/*) root=\${a#root=};; esac; done
i=0; while [ ! -b \$root ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
mount -t ext4 -o rw,noatime \$root /newroot || { echo "cannot mount \$root"; exec sh; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$I/init"
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$R/boot/initrd.img"
cp "$X/boot/vmlinuz-$KVER" "$R/boot/vmlinuz"

# dropbear + the shared libs ldd finds (resolved against the extracted Debian libs)
cp "$X/usr/sbin/dropbear" "$R/usr/sbin/"
for lib in $(LD_LIBRARY_PATH=$XLIB ldd "$X/usr/sbin/dropbear" | awk '/=> \//{print $3}'); do
  cp -L "$lib" "$R/lib/x86_64-linux-gnu/"
done
cp -L "$X/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$R/lib/x86_64-linux-gnu/"
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
mkdir -p "$R/etc/dropbear"
LD_LIBRARY_PATH=$XLIB "$X/usr/bin/dropbearkey" -t ed25519 -f "$R/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
LD_LIBRARY_PATH=$XLIB "$X/usr/bin/dropbearkey" -y -f "$R/etc/dropbear/dropbear_ed25519_host_key" | grep ^ssh- > "$W/hostkey.pub"

# identity, users, payload files
echo "$HOST" > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$HOST" > "$R/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:1000:1000:%s:/home/%s:/bin/sh\n' "$SSH_USER" "$SSH_USER" "$SSH_USER" > "$R/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n%s:*:19000:0:99999:7:::\n' "$SSH_USER" > "$R/etc/shadow"; chmod 600 "$R/etc/shadow"
printf 'root:x:0:\n%s:x:1000:\n' "$SSH_USER" > "$R/etc/group"
printf '/bin/sh\n/bin/ash\n' > "$R/etc/shells"
echo "$NAME" > "$R/etc/standin-name"
[ -n "$ETH1_IP" ] && echo "$ETH1_IP" > "$R/etc/standin-eth1-ip"
H="$R/home/$SSH_USER"; mkdir -p "$H/.ssh"
if [ -f "$PUBKEY" ]; then cat "$PUBKEY"; else echo "$PUBKEY"; fi > "$H/.ssh/authorized_keys"
chmod 700 "$H" "$H/.ssh"; chmod 600 "$H/.ssh/authorized_keys"; chown -R 1000:1000 "$H"
mkdir -p "$R/etc/kafka-bootc/tls"
if [ -n "${CA_CERT:-}" ]; then cp "$CA_CERT" "$R/etc/kafka-bootc/tls/ca.crt"
else printf -- '-----BEGIN CERTIFICATE-----\nstand-in CA for %s\n-----END CERTIFICATE-----\n' "$NAME" > "$R/etc/kafka-bootc/tls/ca.crt"; fi
[ -n "${OVERLAY_DIR:-}" ] && cp -a "$OVERLAY_DIR"/. "$R"/

# init (busybox init + rc script)
cat > "$R/etc/inittab" <<'EOF'
::sysinit:/etc/rc
::respawn:/bin/sh /etc/kafka-standin.sh
::shutdown:/bin/umount -a -r
::ctrlaltdel:/bin/poweroff
EOF
ln -sf /bin/busybox "$R/sbin/init"
cat > "$R/etc/rc" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run
hostname -F /etc/hostname
ip link set lo up
ip link set eth0 up
udhcpc -b -i eth0 -s /etc/udhcpc.script -x "hostname:$(hostname)" -t 30 -T 1 -S >/dev/null 2>&1
if [ -s /etc/standin-eth1-ip ] && [ -e /sys/class/net/eth1 ]; then
  ip link set eth1 up; ip addr add $(cat /etc/standin-eth1-ip) dev eth1
fi
/usr/sbin/dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22 -s -P /run/dropbear.pid
echo "standin: $(hostname) up $(cut -d' ' -f1 /proc/uptime)s" > /dev/console
EOF
chmod 755 "$R/etc/rc"
cat > "$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc's hook: apply the lease to $interface.
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
  : > /etc/resolv.conf
  if [ -n "$domain" ]; then echo "search $domain" >> /etc/resolv.conf; fi
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  echo "standin: $(hostname) has $ip on $interface" > /dev/console ;;
esac
EOF
chmod 755 "$R/etc/udhcpc.script"
# "Kafka" stand-in: TCP 9092, answers with a one-line banner per connection
printf '#!/bin/sh\necho "kafka-standin $(hostname)"\n' > "$R/etc/kafka-banner.sh"; chmod 755 "$R/etc/kafka-banner.sh"
echo 'exec nc -ll -p 9092 -e /etc/kafka-banner.sh' > "$R/etc/kafka-standin.sh"

# GRUB (BIOS / i386-pc), config + modules on the partition
GM="$X/usr/lib/grub/i386-pc"
mkdir -p "$R/boot/grub/i386-pc"
cp "$GM"/*.mod "$GM"/*.lst "$R/boot/grub/i386-pc/"
cat > "$R/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_output serial
set timeout=0
menuentry "standin $HOST" {
  linux /boot/vmlinuz root=/dev/vda1 ${KCMDLINE:-console=ttyS0 quiet init_on_alloc=0 page_alloc.shuffle=0}
  initrd /boot/initrd.img
}
EOF
missing_libs=$(LD_LIBRARY_PATH=$XLIB ldd "$X/usr/bin/grub-mkimage" 2>&1 | awk '/not found/{print $1}' || true)
[ -z "$missing_libs" ] || { echo "grub-mkimage lacks on this host: $missing_libs" >&2; exit 1; }
LD_LIBRARY_PATH=$XLIB "$X/usr/bin/grub-mkimage" -d "$GM" -O i386-pc -o "$W/core.img" \
  -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 normal linux serial terminal configfile echo
[ $(stat -c %s "$W/core.img") -lt $((2047*512)) ] || { echo "core.img too big" >&2; exit 1; }

# ---- assemble raw disk: 1 MiB head (MBR + core.img) + ext4 partition ----------
PSECT=$(( (DISK_MB - 1) * 2048 ))
mke2fs -q -t ext4 -L "$NAME" -d "$R" -m 0 -N 2048 "$W/part.raw" "$((DISK_MB - 1))M"
truncate -s 1M "$W/head.raw"
dd if="$GM/boot.img" of="$W/head.raw" bs=440 count=1 conv=notrunc status=none
dd if="$W/core.img" of="$W/head.raw" bs=512 seek=1 conv=notrunc status=none
le32() { printf "\\x$(printf %02x $(($1&255)))\\x$(printf %02x $((($1>>8)&255)))\\x$(printf %02x $((($1>>16)&255)))\\x$(printf %02x $((($1>>24)&255)))"; }
{ printf '\x80\xfe\xff\xff\x83\xfe\xff\xff'; le32 2048; le32 $PSECT; } |
  dd of="$W/head.raw" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$W/head.raw" bs=1 seek=510 conv=notrunc status=none
cat "$W/head.raw" "$W/part.raw" > "$W/disk.raw"
mkdir -p "$(dirname "$OUT")"
qemu-img convert -c -f raw -O qcow2 "$W/disk.raw" "$OUT"
cp "$W/hostkey.pub" "$OUT.hostkey.pub"
log "built $OUT ($(du -h "$OUT" | cut -f1) on disk, virtual ${DISK_MB}M), kernel $KVER, user $SSH_USER, host $HOST"
