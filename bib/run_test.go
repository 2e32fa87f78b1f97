package bib

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"dagger/kafka-bootc/internal/containertest"
)

func TestArgs(t *testing.T) {
	outs, err := Outputs([]string{"qcow2", "raw"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Run{Target: "quay.io/me/kafka-broker-1:latest", Outputs: outs}.Args(), " ")
	want := "bootc-image-builder build --type qcow2 --type raw --progress verbose --output /output quay.io/me/kafka-broker-1:latest"
	if got != want {
		t.Errorf("args\n %s\nwant\n %s", got, want)
	}
}

func TestVMScriptsAreValidShell(t *testing.T) {
	outs, _ := Outputs([]string{"vmdk", "qcow2"})
	scripts := VMScripts([]VM{{"kafka-broker-1", 4096, 2}, {"kafka-controller-1", 2048, 2}}, outs)
	if len(scripts) != 2 {
		t.Fatalf("scripts %v", scripts)
	}
	sc, _ := exec.LookPath("shellcheck")
	for _, one := range [][]Script{scripts, VMScripts([]VM{{"kafka-broker-1", 4096, 2}}, outs)} {
		for _, s := range one {
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = strings.NewReader(string(s.Content))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", s.Name, err, out)
			}
			if sc == "" {
				continue
			}
			cmd = exec.Command(sc, "-s", "sh", "-")
			cmd.Stdin = strings.NewReader(string(s.Content))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: shellcheck: %v\n%s", s.Name, err, out)
			}
		}
	}
	start := string(scripts[1].Content)
	for _, want := range []string{
		"--name kafka-broker-1 --memory 4096 --vcpus 2",
		"--name kafka-controller-1 --memory 2048 --vcpus 2",
		"kafka-broker-1/qcow2/disk.qcow2",
		"format=qcow2",
	} {
		if !strings.Contains(start, want) {
			t.Errorf("start-vms.sh lacks %q:\n%s", want, start)
		}
	}
	if VMScripts(nil, []Output{{Type: "gce", Path: "gce/image.tar.gz"}}) != nil {
		t.Error("scripts for a disk type virt-install cannot import")
	}
}

// TestScriptLoadsEveryImageUnderItsReference runs the builder script with
// the real podman, against a private container storage, and a stand-in for
// bootc-image-builder that checks what bib would check: every image is in
// the storage under the reference it is looked up by.
func TestScriptLoadsEveryImageUnderItsReference(t *testing.T) {
	store := containertest.New(t, "podman", "buildah")
	dir, sh := store.Dir, store.Sh
	// Two tiny images saved as archives with no name, like Dagger's
	// AsTarball, plus a stale image that the run must not rely on.
	for _, name := range []string{"node", "kafka"} {
		archive := filepath.Join(dir, name+".tar")
		sh(`c=$(buildah from scratch)
echo ` + name + ` > ` + dir + `/` + name + `.txt
buildah copy "$c" ` + dir + `/` + name + `.txt /` + name + `.txt >/dev/null
buildah config --label containers.bootc=1 "$c"
id=$(buildah commit -q "$c")
buildah rm "$c" >/dev/null
podman save -q -o ` + archive + ` "$id"
podman rmi -f "$id" >/dev/null`)
	}
	sh(`c=$(buildah from scratch); buildah commit -q "$c" docker.io/example/stale:1 >/dev/null; buildah rm "$c" >/dev/null`)

	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	refs := []string{"quay.io/me/kafka-broker-1:latest", "docker.io/apache/kafka:3.8.0"}
	fake := `#!/bin/sh
set -eu
for ref in ` + strings.Join(refs, " ") + `; do podman image exists "$ref" || { echo "image not known: $ref"; exit 1; }; done
if podman image exists docker.io/example/stale:1; then echo "stale image kept"; exit 1; fi
podman image inspect --format '{{index .Labels "containers.bootc"}}' quay.io/me/kafka-broker-1:latest | grep -qx 1
echo "bib $*"
`
	os.WriteFile(filepath.Join(bin, "bootc-image-builder"), []byte(fake), 0o755)
	store.Env = append(store.Env, "PATH="+bin+":"+os.Getenv("PATH"))

	outs, _ := Outputs([]string{"qcow2"})
	run := Run{
		Target: refs[0],
		Images: []Image{
			{Ref: refs[0], Archive: filepath.Join(dir, "node.tar")},
			{Ref: refs[1], Archive: filepath.Join(dir, "kafka.tar")},
		},
		Outputs: outs,
	}
	out := sh(run.Script())
	if !strings.Contains(out, "bib build --type qcow2 --progress verbose --output /output "+refs[0]) {
		t.Errorf("bib was not run as planned:\n%s", out)
	}

	// The same run without one of its images must fail.
	run.Images = run.Images[:1]
	if out, err := store.Command(run.Script()).CombinedOutput(); err == nil || !strings.Contains(string(out), "image not known: docker.io/apache/kafka:3.8.0") {
		t.Errorf("a run missing the kafka image passed or failed for another reason: %v\n%s", err, out)
	}
}

func TestScriptPullsDigestPinnedImages(t *testing.T) {
	const pinned = "docker.io/prom/node-exporter@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	s := Run{Target: "quay.io/me/n:latest", Images: []Image{
		{Ref: pinned, Pull: pinned},
		{Ref: "quay.io/me/n:latest", Pull: "quay.io/me/n@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	}}.Script()
	for _, want := range []string{
		"podman pull " + pinned + "\n",
		"podman pull quay.io/me/n@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nname quay.io/me/n@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef quay.io/me/n:latest\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks\n%s\nin\n%s", want, s)
		}
	}
}

// TestRawDisksLeaveSparse packs a sparse raw disk the way the builder
// script does, with the real GNU tar, and restores it the way start-vms.sh
// does: the archive holds the data, not the holes, and the restored disk
// is the same file, sparse again.
func TestRawDisksLeaveSparse(t *testing.T) {
	outs, err := Spec{Types: []string{"raw"}}.Outputs()
	if err != nil {
		t.Fatal(err)
	}
	raw := outs[0]
	if raw.Exported != "image/disk.raw.tar" {
		t.Fatalf("raw disk exported as %s", raw.Exported)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "kafka-broker-1")
	disk := filepath.Join(out, raw.Path)
	os.MkdirAll(filepath.Dir(disk), 0o755)
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	const size, at = 4 << 30, 1 << 30
	data := []byte(strings.Repeat("kafka-bootc", 100000))
	if _, err := f.WriteAt(data, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	sh := func(script string, env ...string) {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s\n%s", err, script, out)
		}
	}
	sh(raw.pack(out))
	if _, err := os.Stat(disk); !os.IsNotExist(err) {
		t.Errorf("the plain disk is still there after packing: %v", err)
	}
	archive, err := os.Stat(filepath.Join(out, raw.Exported))
	if err != nil {
		t.Fatal(err)
	}
	if archive.Size() > 4<<20 {
		t.Errorf("the archive of a %d-byte disk holding %d bytes takes %d bytes", size, len(data), archive.Size())
	}

	start := string(VMScripts([]VM{{"kafka-broker-1", 4096, 2}}, outs)[1].Content)
	var restore string
	for _, line := range strings.Split(start, "\n") {
		if strings.HasPrefix(line, "tar ") {
			restore = line
		}
	}
	if restore == "" {
		t.Fatalf("start-vms.sh does not unpack the raw disk:\n%s", start)
	}
	images := filepath.Join(dir, "images")
	os.Mkdir(images, 0o755)
	sh(restore, "IMAGES="+images)
	restored := filepath.Join(images, "kafka-broker-1.raw")
	st, err := os.Stat(restored)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("restored disk has %d bytes, want %d", st.Size(), size)
	}
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 16<<20 {
		t.Errorf("restored disk takes %d bytes on disk: not sparse", blocks)
	}
	got := make([]byte, len(data))
	rf, _ := os.Open(restored)
	defer rf.Close()
	if _, err := rf.ReadAt(got, at); err != nil || string(got) != string(data) {
		t.Errorf("restored disk lost its data: %v", err)
	}
	if !strings.Contains(start, `format=raw`) {
		t.Errorf("start-vms.sh does not import a raw disk:\n%s", start)
	}

	plain, _ := Spec{Types: []string{"raw"}, PlainRaw: true}.Outputs()
	if plain[0].Sparse() || plain[0].pack(out) != "" || strings.Contains(string(VMScripts([]VM{{"n", 2048, 1}}, plain)[1].Content), "tar ") {
		t.Errorf("--plain-raw still packs the disk: %+v", plain[0])
	}
}

// TestSeedIsLoadedOnceAndRestoredPerNode runs a seed's script and then a
// node's, with the real podman, GNU tar and a registry over plain HTTP, as
// the engine's handoff registry is: the node's storage holds exactly its
// image, built on the seed's base, and the bound image, with every layer
// of both, though the registry no longer has the base's layer, which only
// the seed pulled. A seed that lacks an image the run needs, or holds one
// it does not, fails the run before bib.
func TestSeedIsLoadedOnceAndRestoredPerNode(t *testing.T) {
	store := containertest.New(t, "podman", "buildah", "tar")
	registry, registryRoot := containertest.Registry(t)
	dir, sh := store.Dir, store.Sh
	// A base, a node image built on it, both pushed to the registry, and a
	// bound image as an archive with no name, as Dagger's AsTarball
	// writes one.
	build := func(name, from string) string {
		return strings.TrimSpace(sh(`c=$(buildah from ` + from + `)
echo ` + name + ` > ` + dir + `/` + name + `.txt
buildah copy "$c" ` + dir + `/` + name + `.txt /` + name + `.txt >/dev/null
buildah config --label containers.bootc=1 "$c"
buildah commit -q "$c" localhost/test/` + name + `
buildah rm "$c" >/dev/null`))
	}
	push := func(name string) string {
		sh(`podman push -q --tls-verify=false --digestfile ` + dir + `/` + name + `.digest localhost/test/` + name + ` ` + registry + `/test/` + name + `:1`)
		return registry + "/test/" + name + "@" + strings.TrimSpace(sh(`cat `+dir+`/`+name+`.digest`))
	}
	build("base", "scratch")
	build("node", "localhost/test/base")
	kafkaID := build("kafka", "scratch")
	kafka := filepath.Join(dir, "kafka.tar")
	sh(`podman save -q --format oci-archive -o ` + kafka + ` ` + kafkaID)
	base, node := push("base"), push("node")

	// local runs the script with the seed in dir/seed-NAME.
	local := func(script, name string) string {
		t.Helper()
		if !strings.Contains(script, SeedDir+"/") {
			t.Fatalf("script does not use %s:\n%s", SeedDir, script)
		}
		seedDir := filepath.Join(dir, "seed-"+name)
		os.MkdirAll(seedDir, 0o755)
		return strings.ReplaceAll(script, SeedDir+"/", seedDir+"/")
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	const ref, bound = "quay.io/me/kafka-broker-1:latest", "docker.io/apache/kafka:3.8.0"
	// A stand-in for bib that looks at what bib and bootc would use: both
	// images, and the node image's files from both of its layers.
	fake := `#!/bin/sh
set -eu
for ref in ` + ref + ` ` + bound + `; do podman image exists "$ref" || { echo "image not known: $ref"; exit 1; }; done
m=$(podman image mount ` + ref + `)
cat "$m/base.txt" "$m/node.txt"
podman image unmount ` + ref + ` >/dev/null
echo "bib $*"
`
	os.WriteFile(filepath.Join(bin, "bootc-image-builder"), []byte(fake), 0o755)
	store.Env = append(store.Env, "PATH="+bin+":"+os.Getenv("PATH"))
	outs, _ := Outputs([]string{"qcow2"})
	nodeImage := Image{Ref: ref, Pull: node, PlainHTTP: true}
	boundImage := Image{Ref: bound, Archive: kafka}

	// Without a base, as for a published node image, the node's image is
	// pulled whole.
	baseless := Seed{Images: []Image{boundImage}}
	sh(local(baseless.Script(), "baseless"))
	run := Run{Target: ref, Images: []Image{nodeImage}, Seed: &baseless, Outputs: outs}
	if out := sh(local(run.Script(), "baseless")); !strings.Contains(out, "base\nnode\nbib build") {
		t.Errorf("bib did not see the node image whole on a seed without a base:\n%s", out)
	}

	seed := Seed{Base: &Image{Pull: base, PlainHTTP: true}, Images: []Image{boundImage}}
	sh(local(seed.Script(), "full"))
	lacking := Seed{Base: seed.Base}
	sh(local(lacking.Script(), "lacking"))
	// From now on the registry lacks the base's layer: only the seeds have it.
	layer := strings.TrimPrefix(baseLayer(t, registry, base), "sha256:")
	if err := os.RemoveAll(filepath.Join(registryRoot, "docker/registry/v2/blobs/sha256", layer[:2], layer)); err != nil {
		t.Fatalf("removing the base layer %s from the registry: %v", layer, err)
	}
	// A stale image in the storage must not survive into the run.
	sh(`c=$(buildah from scratch); buildah commit -q "$c" ` + bound + ` >/dev/null; buildah rm "$c" >/dev/null`)
	run.Seed = &seed
	out := sh(local(run.Script(), "full"))
	if !strings.Contains(out, "base\nnode\nbib build --type qcow2") {
		t.Errorf("bib did not see the node image whole:\n%s", out)
	}
	if got := strings.Fields(sh(`podman images --format '{{.Repository}}:{{.Tag}}' | sort`)); strings.Join(got, " ") != bound+" "+ref {
		t.Errorf("storage holds %v, want the node and the bound image", got)
	}

	// A run that needs an image its seed does not hold fails before bib.
	if out, err := store.Command(local(run.Script(), "lacking")).CombinedOutput(); err == nil || !strings.Contains(string(out), "builder storage: image "+bound+" is missing") || strings.Contains(string(out), "bib build") {
		t.Errorf("a run on a seed without the bound image passed or failed for another reason: %v\n%s", err, out)
	}
	// So does one whose seed holds an image it does not need.
	run.Seed = &lacking
	if out, err := store.Command(local(run.Script(), "full")).CombinedOutput(); err == nil || !strings.Contains(string(out), "holds other images") || strings.Contains(string(out), "bib build") {
		t.Errorf("a run on a seed with an extra image passed or failed for another reason: %v\n%s", err, out)
	}
}

// baseLayer reads an image's manifest from the registry and returns the
// digest of its only layer.
func baseLayer(t *testing.T, registry, image string) string {
	t.Helper()
	repo, digest, _ := strings.Cut(strings.TrimPrefix(image, registry+"/"), "@")
	req, _ := http.NewRequest("GET", "http://"+registry+"/v2/"+repo+"/manifests/"+digest, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Layers []struct{ Digest string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Layers) != 1 || len(m.Layers[0].Digest) != 71 {
		t.Fatalf("manifest of %s: %v %+v", image, err, m)
	}
	return m.Layers[0].Digest
}

// TestStartVMsWritesAddressesAndHostKeys runs start-vms.sh with stand-ins
// for virt-install, virsh and ssh-keyscan: a VM gets its address only at
// the second look, and its sshd answers only at the third; the script
// waits for both, then writes addresses.txt and known_hosts.
func TestStartVMsWritesAddressesAndHostKeys(t *testing.T) {
	outs, _ := Outputs([]string{"qcow2"})
	dir, bin, images := t.TempDir(), t.TempDir(), t.TempDir()
	for _, s := range VMScripts([]VM{{"kafka-broker-1", 4096, 2}, {"kafka-controller-1", 2048, 2}}, outs) {
		os.WriteFile(filepath.Join(dir, s.Name), s.Content, 0o755)
	}
	for i, vm := range []string{"kafka-broker-1", "kafka-controller-1"} {
		os.MkdirAll(filepath.Join(dir, vm, "qcow2"), 0o755)
		os.WriteFile(filepath.Join(dir, vm, "qcow2", "disk.qcow2"), []byte("disk"), 0o644)
		os.WriteFile(filepath.Join(bin, "ip-"+vm), []byte(fmt.Sprintf("192.168.122.%d", 10+i)), 0o644)
	}
	stubs := map[string]string{
		"virt-install": `echo "$*" >>"$STUBS/installed"`,
		// The lease appears at the second look.
		"virsh": `n=$(cat "$STUBS/looks-$2" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >"$STUBS/looks-$2"
[ "$n" -ge 2 ] || exit 0
printf ' Name       MAC address          Protocol     Address\n-----------------------------------------------------\n vnet0      52:54:00:6b:3c:58    ipv4         %s/24\n' "$(cat "$STUBS/ip-$2")"`,
		// sshd answers at the third attempt.
		"ssh-keyscan": `ip=$3; n=$(cat "$STUBS/scans-$ip" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >"$STUBS/scans-$ip"
[ "$n" -ge 3 ] || exit 1
echo "$ip ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey$ip"`,
	}
	for name, body := range stubs {
		os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755)
	}
	cmd := exec.Command("sh", filepath.Join(dir, "start-vms.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STUBS="+bin, "IMAGES="+images, "POLL=0.05", "TIMEOUT=5")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start-vms.sh: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	if got := read("addresses.txt"); got != "kafka-broker-1=192.168.122.10\nkafka-controller-1=192.168.122.11\n" {
		t.Errorf("addresses.txt:\n%s", got)
	}
	if got := read("known_hosts"); got != "192.168.122.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey192.168.122.10\n192.168.122.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey192.168.122.11\n" {
		t.Errorf("known_hosts:\n%s", got)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	// A VM that never gets an address: the script says which, and leaves
	// the files of the last run as they were.
	os.Remove(filepath.Join(bin, "ip-kafka-controller-1"))
	os.WriteFile(filepath.Join(bin, "virsh"), []byte("#!/bin/sh\n[ \"$2\" = kafka-broker-1 ] && printf ' vnet0 52:54:00:6b:3c:58 ipv4 192.168.122.10/24\\n'\nexit 0\n"), 0o755)
	again := exec.Command("sh", filepath.Join(dir, "start-vms.sh"))
	again.Env = append(cmd.Env, "TIMEOUT=1")
	out, err := again.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "start-vms.sh: kafka-controller-1 has no address after 1 s") {
		t.Errorf("a VM without an address: %v\n%s", err, out)
	}
	if read("addresses.txt") != "kafka-broker-1=192.168.122.10\nkafka-controller-1=192.168.122.11\n" {
		t.Errorf("a failed run changed addresses.txt")
	}
}
