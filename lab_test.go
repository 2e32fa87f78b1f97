package main

import (
	"strings"
	"testing"
)

// TestTheLabsArgumentsAreCheckedBeforeItBoots: lab refuses what the lab's
// container would, and names the nodes whose disks are missing, from the
// disks directory's listing alone.
func TestTheLabsArgumentsAreCheckedBeforeItBoots(t *testing.T) {
	m := moduleFor(t, "version: 1\nbrokers:\n  count: 1\ncontrollers:\n  count: 1\n")
	c, err := m.cluster()
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Parent: m, Accel: "auto"}
	if _, err := l.plan(c, []string{"kafka-broker-1/qcow2/disk.qcow2"}); err == nil || !strings.Contains(err.Error(), "no <node>/qcow2/disk.qcow2 for kafka-controller-1") {
		t.Errorf("a missing disk: %v", err)
	}
	if _, err := l.plan(c, l.allDisks(c)); err != nil {
		t.Errorf("every disk there: %v", err)
	}
	l.Memory = 100
	if _, err := l.plan(c, l.allDisks(c)); err == nil || !strings.Contains(err.Error(), "memory 100 MiB") {
		t.Errorf("memory 100: %v", err)
	}
	if _, err := m.Lab(t.Context(), nil, nil, nil, 0, 0, "auto", nil, nil, false, "Not An Image"); err == nil || !strings.Contains(err.Error(), `image "Not An Image": not an image reference`) {
		t.Errorf("image: %v", err)
	}
	if _, err := m.Lab(t.Context(), nil, nil, nil, 0, 0, "qemu", nil, nil, false, ""); err == nil || !strings.Contains(err.Error(), `accel "qemu"`) {
		t.Errorf("accel qemu: %v", err)
	}
}

// TestTheLabsCommandLine: what lab was given reaches kafka-bootc-lab.
func TestTheLabsCommandLine(t *testing.T) {
	m := moduleFor(t, "version: 1\n")
	l := &Lab{Parent: m, Accel: "tcg", Memory: 1024, Cpus: 1, Outbound: true}
	got := strings.Join(l.args("smoke"), " ")
	want := "/usr/local/bin/kafka-bootc-lab smoke -spec /etc/kafka-bootc-lab/spec.json -disks /disks -run /var/lib/kafka-bootc-lab -identity /run/secrets/kafka-bootc-lab/identity -accel tcg -memory 1024 -cpus 1 -outbound"
	if got != want {
		t.Errorf("args:\n%s\nwant:\n%s", got, want)
	}
	if _, err := l.Smoke(t.Context(), 900, 900, 100, "kafka-broker-1 quay.io/me/kafka-broker-1:latest"); err == nil || !strings.Contains(err.Error(), "upgrade: ") {
		t.Errorf("an upgrade not pinned by digest: %v", err)
	}
	hosts, err := l.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"kafka-broker-1=127.0.0.1:2201\n", "kafka-controller-3=127.0.0.1:2206\n", "127.0.0.1 kafka-broker-1 kafka-broker-2 kafka-broker-3\n"} {
		if !strings.Contains(hosts, w) {
			t.Errorf("hosts lacks %q:\n%s", w, hosts)
		}
	}
}
