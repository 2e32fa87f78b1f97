#!/bin/sh
# Makes room on a GitHub-hosted ubuntu runner for the Dagger engine's cache
# and bootc-image-builder, which writes a disk image of the root filesystem's
# size: removes the toolchains these jobs do not use, as the bootc image
# templates do on the same runners, and prints the free space before and
# after.
set -eu
df -h /
sudo rm -rf /usr/share/dotnet /usr/local/lib/android /opt/ghc /usr/local/.ghcup \
	/opt/hostedtoolcache/CodeQL /usr/local/share/boost /usr/share/swift \
	/usr/local/share/powershell /usr/local/share/chromium /usr/local/lib/node_modules
df -h /
