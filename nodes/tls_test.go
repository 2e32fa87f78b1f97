package nodes

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/pki"

	"github.com/BurntSushi/toml"
	"github.com/containers/podman/v5/pkg/systemd/quadlet"
	"github.com/magiconair/properties"
	"github.com/osbuild/blueprint/pkg/blueprint"
	"github.com/osbuild/images/pkg/customizations/fsnode"
	"github.com/osbuild/images/pkg/policies"
)

// mount is a file that a container reads from the host, as podman's
// command lines say: a --secret mounted at a path, made by an ExecStartPre
// from a host file.
type mount struct {
	host string
	uid  string
	mode string
}

// mounts lists the secrets of a converted service by their container path.
func (s service) mounts(t *testing.T) map[string]mount {
	t.Helper()
	sources := map[string]string{}
	for _, line := range s.unit.LookupAll(quadlet.ServiceGroup, "ExecStartPre") {
		f := strings.Fields(line)
		if len(f) == 6 && slices.Equal(f[:4], []string{podmanPath, "secret", "create", "--replace"}) {
			sources[f[4]] = f[5]
		}
	}
	out := map[string]mount{}
	for _, spec := range s.flag("--secret") {
		opts := map[string]string{}
		fields := strings.Split(spec, ",")
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			opts[k] = v
		}
		host, ok := sources[fields[0]]
		if !ok {
			t.Errorf("secret %s: no ExecStartPre makes it", fields[0])
		}
		if opts["type"] != "mount" || !path.IsAbs(opts["target"]) {
			t.Errorf("secret %s: not mounted at an absolute path: %q", fields[0], spec)
		}
		out[opts["target"]] = mount{host: host, uid: opts["uid"], mode: opts["mode"]}
	}
	return out
}

// imageFile finds a file of the node's role image by its path.
func imageFile(t *testing.T, c *Cluster, r Role, p string) []byte {
	t.Helper()
	img, err := c.RoleImage(r)
	if err != nil {
		t.Fatal(err)
	}
	return fileOf(t, img, p)
}

// serverProperties is the server.properties that the apache/kafka image
// writes for a node (KafkaDockerWrapper, 3.8.0): the mounted
// /mnt/shared/config/server.properties when there is one, read as Java
// reads it, then the properties of the environment.
func serverProperties(t *testing.T, c *Cluster, n Node, svc service) map[string]string {
	t.Helper()
	props := map[string]string{}
	if m, ok := svc.mounts(t)[ctrServerProperties]; ok {
		p, err := properties.Load(imageFile(t, c, n.Role, m.host), properties.ISO_8859_1)
		if err != nil {
			t.Fatalf("%s: mounted server.properties: %v", n.Name, err)
		}
		props = p.Map()
	}
	for k, v := range envProperties(svc.env()) {
		props[k] = v
	}
	return props
}

// javaRule is one ssl.principal.mapping.rules rule, applied as Kafka's
// SslPrincipalMapper does: the pattern must match the whole name, and the
// name is replaced with the replacement.
type javaRule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string
}

func parseRules(t *testing.T, rules string) []javaRule {
	t.Helper()
	split := regexp.MustCompile(`\s*((DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?))\s*(,\s*|$)`)
	var out []javaRule
	for _, m := range split.FindAllStringSubmatch(rules, -1) {
		if m[2] == "DEFAULT" {
			out = append(out, javaRule{isDefault: true})
			continue
		}
		out = append(out, javaRule{pattern: regexp.MustCompile("^(?:" + m[3] + ")$"), replacement: strings.ReplaceAll(m[5], "$1", "${1}")})
	}
	return out
}

func principal(rules []javaRule, dn string) string {
	for _, r := range rules {
		if r.isDefault {
			return dn
		}
		if r.pattern.MatchString(dn) {
			return r.pattern.ReplaceAllString(dn, r.replacement)
		}
	}
	return ""
}

// TestTLSNodesFormOneSecureCluster reads each node's final Kafka
// configuration and the files podman mounts, and checks that together
// they make one cluster where every listener needs a certificate from the
// cluster CA, and where nodes and the admin are super users and nobody
// else is allowed anything without an ACL.
func TestTLSNodesFormOneSecureCluster(t *testing.T) {
	s := exampleSpec()
	s.Domain = "kafka.example.com"
	c := plan(t, s)
	caPEM, caKeyPEM, err := pki.NewCA("test CA", 30, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caPEM, caKeyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			svc := nodeService(t, c, n)
			props := serverProperties(t, c, n, svc)
			protocols := map[string]string{}
			for _, kv := range strings.Split(props["listener.security.protocol.map"], ",") {
				name, proto, _ := strings.Cut(kv, ":")
				protocols[name] = proto
			}
			for _, l := range strings.Split(props["listeners"], ",") {
				name, _, _ := strings.Cut(l, "://")
				if protocols[name] != "SSL" {
					t.Errorf("listener %s: protocol %q, want SSL", name, protocols[name])
				}
			}
			if protocols[props["controller.listener.names"]] != "SSL" {
				t.Errorf("controller listener %q: protocol %q, want SSL", props["controller.listener.names"], protocols[props["controller.listener.names"]])
			}
			want := map[string]string{
				"ssl.client.auth":                "required",
				"ssl.keystore.type":              "PEM",
				"ssl.truststore.type":            "PEM",
				"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
				"allow.everyone.if.no.acl.found": "false",
			}
			for k, v := range want {
				if props[k] != v {
					t.Errorf("%s = %q, want %q", k, props[k], v)
				}
			}
			for _, k := range []string{"ssl.keystore.password", "ssl.truststore.password", "ssl.key.password"} {
				if _, set := props[k]; set {
					t.Errorf("%s is set: Kafka refuses a password with PEM stores, and the key has none", k)
				}
			}

			// The stores are the files that the disk holds, mounted for
			// Kafka's user; the key for it alone.
			mounts := svc.mounts(t)
			key, ok := mounts[props["ssl.keystore.location"]]
			if !ok || key.host != NodePEMPath || key.uid != "1000" || key.mode != "0400" {
				t.Errorf("key store %q: mounted as %+v, want %s for uid 1000, mode 0400", props["ssl.keystore.location"], key, NodePEMPath)
			}
			trust, ok := mounts[props["ssl.truststore.location"]]
			if !ok || trust.host != CACertPath {
				t.Errorf("trust store %q: mounted as %+v, want %s", props["ssl.truststore.location"], trust, CACertPath)
			}
			_, files := NodeTLSFiles([]byte("node"), []byte("ca"))
			var written []string
			for _, f := range files {
				written = append(written, f.Path)
			}
			if !slices.Contains(written, key.host) || !slices.Contains(written, trust.host) {
				t.Errorf("the disk gets %q, the container reads %s and %s", written, key.host, trust.host)
			}
			asserts := svc.unit.LookupAll(quadlet.UnitGroup, "AssertFileNotEmpty")
			if !slices.Equal(asserts, []string{NodePEMPath, CACertPath}) {
				t.Errorf("AssertFileNotEmpty %q: a disk without the node's files must stop the unit, naming them", asserts)
			}

			// Principals: this node's certificate maps to a super user, so
			// does the admin's; another client maps to its own name and is
			// not one.
			rules := parseRules(t, props["ssl.principal.mapping.rules"])
			supers := strings.Split(props["super.users"], ";")
			certPEM, _, err := ca.Issue(c.NodeIdentity(n, nil, 10), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			cert, err := pki.ParseCertificate(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			// Java's X500Principal.getName() is RFC 2253, as Go's
			// pkix.Name.String().
			if p := principal(rules, cert.Subject.String()); !slices.Contains(supers, "User:"+p) {
				t.Errorf("node certificate %q maps to %q, not a super user of %q", cert.Subject, p, supers)
			}
			for name, super := range map[string]bool{"admin": true, "alice": false} {
				id := ClientIdentity(name, 1)
				p := principal(rules, id.Subject.String())
				if p != name || slices.Contains(supers, "User:"+p) != super {
					t.Errorf("client %s maps to %q; super user %v, want %v", name, p, slices.Contains(supers, "User:"+p), super)
				}
			}
			if !slices.Contains(cert.DNSNames, n.Hostname) || cert.VerifyHostname(n.Hostname) != nil {
				t.Errorf("certificate names %q: the other nodes reach it at %s", cert.DNSNames, n.Hostname)
			}
			if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
				t.Errorf("extended key usage %v: a node is a server and a client", cert.ExtKeyUsage)
			}
		})
	}
}

// TestPlaintextIsOptIn checks that the default is TLS and that plaintext
// mode leaves every TLS file and mount out.
func TestPlaintextIsOptIn(t *testing.T) {
	if Default().Security != SecurityTLS {
		t.Fatalf("default security %q, want %q", Default().Security, SecurityTLS)
	}
	s := exampleSpec()
	s.Security = SecurityPlaintext
	c := plan(t, s)
	for _, n := range c.Nodes {
		svc := nodeService(t, c, n)
		props := serverProperties(t, c, n, svc)
		if m := svc.mounts(t); len(m) > 0 {
			t.Errorf("%s: mounts %v in plaintext mode", n.Name, m)
		}
		for k := range props {
			if strings.HasPrefix(k, "ssl.") || k == "authorizer.class.name" {
				t.Errorf("%s: %s set in plaintext mode", n.Name, k)
			}
		}
		if !strings.Contains(props["listener.security.protocol.map"], "PLAINTEXT") || strings.Contains(props["listener.security.protocol.map"], "SSL") {
			t.Errorf("%s: protocol map %q", n.Name, props["listener.security.protocol.map"])
		}
	}
}

// TestProbesUseTheNodesIdentity checks that in TLS mode every Kafka tool a
// probe runs reads the mounted client settings, placed where the tool
// reads them, and that those settings speak TLS with the node's files.
func TestProbesUseTheNodesIdentity(t *testing.T) {
	c := plan(t, exampleSpec())
	for _, r := range Roles {
		svc := convert(t, r.Unit()+".container", imageFile(t, c, r, path.Join(quadletDir, r.Unit()+".container")))
		mounts := svc.mounts(t)
		for _, p := range c.Probes(r) {
			i := slices.Index(p.Argv, "--command-config")
			// A tool that prints its version connects to nothing.
			if !slices.Contains(p.Argv, "exec") || p.Name == ProbeVersion {
				continue
			}
			if i < 0 {
				t.Errorf("%s: probe %q has no --command-config", r, p.Name)
				continue
			}
			if sub := slices.Index(p.Argv, "describe"); (p.Name == ProbeQuorum || p.Name == ProbeFeatures) && sub < i {
				t.Errorf("%s: %q: --command-config after the subcommand is the subcommand's option", r, p.Argv)
			}
			m, ok := mounts[p.Argv[i+1]]
			if !ok {
				t.Errorf("%s: probe %q reads %s, which is not mounted", r, p.Name, p.Argv[i+1])
				continue
			}
			client, err := properties.Load(imageFile(t, c, r, m.host), properties.ISO_8859_1)
			if err != nil {
				t.Fatal(err)
			}
			cp := client.Map()
			if cp["security.protocol"] != "SSL" {
				t.Errorf("%s: client security.protocol %q", r, cp["security.protocol"])
			}
			if mounts[cp["ssl.keystore.location"]].host != NodePEMPath || mounts[cp["ssl.truststore.location"]].host != CACertPath {
				t.Errorf("%s: client stores %q and %q are not the node's mounted files", r, cp["ssl.keystore.location"], cp["ssl.truststore.location"])
			}
		}
	}
}

// TestExporterServesTLSWithTheNodesCertificate checks node-exporter's web
// configuration: the node's files, mounted for node-exporter's user.
func TestExporterServesTLSWithTheNodesCertificate(t *testing.T) {
	c := plan(t, exampleSpec())
	unit := ExporterUnit + ".container"
	svc := convert(t, unit, imageFile(t, c, Broker, path.Join(quadletDir, unit)))
	mounts := svc.mounts(t)
	var webConfig string
	for _, a := range svc.podman {
		if v, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			webConfig = v
		}
	}
	m, ok := mounts[webConfig]
	if !ok {
		t.Fatalf("--web.config.file %q is not mounted (%v)", webConfig, mounts)
	}
	cfg := string(imageFile(t, c, Broker, m.host))
	for _, field := range []string{"cert_file", "key_file", "client_ca_file"} {
		v := regexp.MustCompile(`(?m)^\s+` + field + `: (\S+)$`).FindStringSubmatch(cfg)
		if v == nil {
			t.Errorf("web config has no %s:\n%s", field, cfg)
			continue
		}
		file := mounts[v[1]]
		want := NodePEMPath
		if field == "client_ca_file" {
			want = CACertPath
		}
		if file.host != want || file.uid != "65534" {
			t.Errorf("%s %s: mounted as %+v, want %s for node-exporter's user 65534", field, v[1], file, want)
		}
	}
	if !strings.Contains(cfg, "client_auth_type: VerifyClientCertIfGiven") {
		t.Errorf("scrapers must be free to present a certificate or not:\n%s", cfg)
	}
}

func TestSecurityInputIsChecked(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"an unknown mode", func(s *Spec) { s.Security = "ssl" }, `security "ssl": must be tls`},
		{"an admin named like the brokers", func(s *Spec) { s.AdminUser = "kafka-broker" }, `admin user "kafka-broker": is the principal of the cluster's nodes`},
		{"an admin name with a comma", func(s *Spec) { s.AdminUser = "ad,min" }, `admin user "ad,min": must start with a lower-case letter`},
		{"an installer ISO", func(s *Spec) { s.Disk.Types = []string{"anaconda-iso"} }, "disk type anaconda-iso: bootc-image-builder's installer ISO cannot carry files"},
		{"a managed TLS property", func(s *Spec) { s.Broker.Settings = []string{"ssl.client.auth=none"} }, "broker settings: ssl.client.auth is set by kafka-bootc from the security mode"},
	}
	for _, tc := range tests {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			s := exampleSpec()
			tc.edit(&s)
			_, err := Plan(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	s := exampleSpec()
	s.Security = SecurityPlaintext
	s.Disk.Types = []string{"anaconda-iso"}
	if _, err := Plan(s); err != nil {
		t.Errorf("plaintext installer ISO: %v", err)
	}
}

func TestExtraNamesGoToTheirNode(t *testing.T) {
	c := plan(t, exampleSpec())
	extra, err := c.ParseExtraNames([]string{"kafka-broker-1=10.0.0.11", "kafka-broker-1=Kafka.Example.com", "kafka-controller-2=fd00::2"})
	if err != nil {
		t.Fatal(err)
	}
	id := c.NodeIdentity(c.Nodes[0], extra["kafka-broker-1"], 1)
	if !slices.Equal(id.DNSNames, []string{"kafka-broker-1", "kafka.example.com"}) || len(id.IPs) != 1 || id.IPs[0].String() != "10.0.0.11" {
		t.Errorf("kafka-broker-1: names %q, IPs %v", id.DNSNames, id.IPs)
	}
	if len(extra["kafka-controller-2"]) != 1 || len(extra["kafka-broker-2"]) != 0 {
		t.Errorf("extra names %v", extra)
	}
	for in, want := range map[string]string{
		"kafka-broker-1":            "must be NODE=NAME",
		"kafka-broker-9=a.example":  `node "kafka-broker-9": no such node`,
		"kafka-broker-1=bad_name!":  `extra name "bad_name!": must be a DNS name`,
		"kafka-broker-1=":           `extra name "": must be a DNS name`,
		"kafka-broker-1=10.0.0.300": "must be a DNS name",
	} {
		if _, err := c.ParseExtraNames([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// TestDiskFilesAreOnesBibWrites decodes the TLS part of a disk's config as
// bootc-image-builder does (osbuild's blueprint), turns it into the file
// system nodes that osbuild writes, and checks the paths against the
// policy that bib applies to bootc disks (osbuild/images'
// OstreeCustomFilesPolicies and OstreeCustomDirectoriesPolicies).
func TestDiskFilesAreOnesBibWrites(t *testing.T) {
	files, dirs := asBibWritesThem(t)(NodeTLSFiles([]byte("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"), []byte("ca\n")))
	if policies.OstreeCustomFilesPolicies.Check("/usr/share/kafka-bootc/x") == nil {
		t.Fatal("the policy allows a file under /usr; it is not the one bib applies")
	}
	modes := map[string]string{}
	for _, f := range files {
		if err := policies.OstreeCustomFilesPolicies.Check(f.Path()); err != nil {
			t.Errorf("bib refuses %s on a bootc disk: %v", f.Path(), err)
		}
		modes[f.Path()] = fmt.Sprintf("%o %v", *f.Mode(), f.User())
	}
	for _, d := range dirs {
		if err := policies.OstreeCustomDirectoriesPolicies.Check(d.Path()); err != nil {
			t.Errorf("bib refuses directory %s on a bootc disk: %v", d.Path(), err)
		}
		if !d.EnsureParentDirs() {
			t.Errorf("%s: parents are not made; /etc/kafka-bootc does not exist", d.Path())
		}
	}
	if modes[NodePEMPath] != "400 root" || modes[CACertPath] != "644 root" {
		t.Errorf("modes %v: the key must be readable by root alone", modes)
	}
	if !strings.Contains(string(files[0].Data()), "BEGIN PRIVATE KEY") {
		t.Errorf("the key did not survive the config")
	}
}

// asBibWritesThem puts directories and files in a disk's config, decodes it
// as bootc-image-builder does (osbuild's blueprint, unknown keys refused),
// and returns the file system nodes that osbuild writes. It takes what
// NodeTLSFiles and PullSecretFiles return.
func asBibWritesThem(t *testing.T) func([]bib.Directory, []bib.File) ([]*fsnode.File, []*fsnode.Directory) {
	return func(dirs []bib.Directory, files []bib.File) ([]*fsnode.File, []*fsnode.Directory) {
		return bibWrites(t, dirs, files)
	}
}

func bibWrites(t *testing.T, dirs []bib.Directory, files []bib.File) ([]*fsnode.File, []*fsnode.Directory) {
	t.Helper()
	cfg := bib.DefaultSpec().Config()
	cfg.Customizations.User[0].Key = exampleKey
	cfg.Customizations.Directories, cfg.Customizations.Files = dirs, files
	data, err := cfg.TOML()
	if err != nil {
		t.Fatal(err)
	}
	var bp blueprint.Blueprint
	md, err := toml.Decode(string(data), &bp)
	if err != nil {
		t.Fatalf("bib would refuse the config: %v\n%s", err, data)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("bib would refuse unknown keys %v", u)
	}
	fsFiles, err := blueprint.FileCustomizationsToFsNodeFiles(bp.Customizations.Files)
	if err != nil {
		t.Fatal(err)
	}
	fsDirs, err := blueprint.DirectoryCustomizationsToFsNodeDirectories(bp.Customizations.Directories)
	if err != nil {
		t.Fatal(err)
	}
	return fsFiles, fsDirs
}

// kafkaPEM reads the entries of a PEM value as Kafka 3.8's PemParser
// (DefaultSslEngineFactory) does: its pattern, on the trimmed value plus a
// newline, each entry's base64 with white space removed.
func kafkaPEM(t *testing.T, name, value string) [][]byte {
	t.Helper()
	words := strings.ReplaceAll(name, " ", `\s+`)
	edge := func(which string) string { return `-+` + which + `\s*.*` + words + `[^-]*-+\s+` }
	re := regexp.MustCompile(edge("BEGIN") + `(?:\s*[^\r\n]*:[^\r\n]*[\r\n]+)*([a-zA-Z0-9/+=\s]*)` + edge("END"))
	var out [][]byte
	for _, m := range re.FindAllStringSubmatch(strings.TrimSpace(value)+"\n", -1) {
		der, err := base64.StdEncoding.DecodeString(regexp.MustCompile(`\s`).ReplaceAllString(m[1], ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, der)
	}
	if len(out) == 0 {
		t.Fatalf("Kafka finds no %s in %q", name, value)
	}
	return out
}

// TestAClientDirectoryWorksAsItIs reads client.properties as Java and
// Kafka read it, and connects with what it says to a server that, like
// every listener in TLS mode, requires a certificate from the CA.
func TestAClientDirectoryWorksAsItIs(t *testing.T) {
	c := plan(t, exampleSpec())
	now := time.Now()
	caPEM, caKeyPEM, err := pki.NewCA("test CA", 30, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caPEM, caKeyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(ClientIdentity("alice", 10), now)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]File{}
	for _, f := range c.ClientFiles("alice", certPEM, keyPEM, caPEM) {
		files[f.Path] = f
	}
	for _, f := range files {
		if bytes.Contains(f.Content, []byte("PRIVATE KEY")) != f.Private {
			t.Errorf("%s: private %v, yet holding a key is %v: a key must never be logged", f.Path, f.Private, !f.Private)
		}
	}
	if files["client.key"].Mode != 0o600 || files["client.properties"].Mode != 0o600 || files["kcat.sh"].Mode != 0o755 {
		t.Errorf("modes: key %v, properties %v, kcat.sh %v", files["client.key"].Mode, files["client.properties"].Mode, files["kcat.sh"].Mode)
	}
	p, err := properties.Load(files["client.properties"].Content, properties.ISO_8859_1)
	if err != nil {
		t.Fatal(err)
	}
	props := p.Map()
	if props["security.protocol"] != "SSL" || props["ssl.keystore.type"] != "PEM" || props["ssl.truststore.type"] != "PEM" {
		t.Fatalf("client.properties: %v", props)
	}
	keyDER := kafkaPEM(t, "PRIVATE KEY", props["ssl.keystore.key"])[0]
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		t.Fatalf("Kafka reads PKCS#8 keys only: %v", err)
	}
	chain := kafkaPEM(t, "CERTIFICATE", props["ssl.keystore.certificate.chain"])
	roots := x509.NewCertPool()
	for _, der := range kafkaPEM(t, "CERTIFICATE", props["ssl.truststore.certificates"]) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(cert)
	}

	nodePEM, nodeKey, err := ca.Issue(c.NodeIdentity(c.Nodes[0], nil, 10), now)
	if err != nil {
		t.Fatal(err)
	}
	serverPair, err := tls.X509KeyPair(nodePEM, nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			if conn.(*tls.Conn).Handshake() == nil {
				conn.Write([]byte("ok"))
			}
			conn.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}},
		RootCAs:      roots, ServerName: c.Nodes[0].Hostname,
	})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 2)); err != nil {
		t.Errorf("the server refused the client: %v", err)
	}
	if !strings.Contains(string(files["client.properties"].Content), c.Bootstrap()) {
		t.Errorf("client.properties does not show the bootstrap servers %s", c.Bootstrap())
	}
}

// TestKcatScriptPassesShellcheck: kcat.sh is run by users as it is.
func TestKcatScriptPassesShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("skipped: shellcheck is not installed (.ci/run installs it)")
	}
	c := plan(t, exampleSpec())
	for _, f := range c.ClientFiles("alice", nil, nil, nil) {
		if f.Path != "kcat.sh" {
			continue
		}
		cmd := exec.Command("shellcheck", "-")
		cmd.Stdin = bytes.NewReader(f.Content)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck kcat.sh: %v\n%s", err, out)
		}
	}
}

// TestSecuritySettingsAreRefusedUnderEveryName: the TLS and authorization
// settings that kafka-bootc manages cannot be reached under a listener's
// prefix, nor through a neighbouring setting that changes who is trusted
// or how; a listener's other settings, and settings that are not about
// security, are the user's.
func TestSecuritySettingsAreRefusedUnderEveryName(t *testing.T) {
	for _, tc := range []struct{ setting, want string }{
		{"listener.name.broker.ssl.client.auth=none", "listener.name.broker.ssl.client.auth: Kafka reads it in place of ssl.client.auth, which kafka-bootc manages"},
		{"listener.name.controller.ssl.truststore.location=/tmp/any.pem", "Kafka reads it in place of ssl.truststore.location"},
		{"listener.name.broker.ssl.principal.mapping.rules=DEFAULT", "Kafka reads it in place of ssl.principal.mapping.rules"},
		{"listener.name.broker.listeners=BROKER://:1", "Kafka reads it in place of listeners"},
		{"listener.name.broker.ssl.enabled.protocols=TLSv1", "Kafka reads it in place of ssl.enabled.protocols"},
		{"principal.builder.class=org.example.Everyone", "principal.builder.class: kafka-bootc manages TLS and authorization"},
		{"ssl.enabled.protocols=TLSv1,TLSv1.1", "ssl.enabled.protocols: kafka-bootc manages TLS and authorization"},
		{"ssl.protocol=TLSv1", "ssl.protocol: kafka-bootc manages"},
		{"ssl.truststore.certificates=x", "ssl.truststore.certificates: kafka-bootc manages"},
		{"sasl.enabled.mechanisms=PLAIN", "sasl.enabled.mechanisms: kafka-bootc manages"},
		{"security.inter.broker.protocol=PLAINTEXT", "security.inter.broker.protocol: kafka-bootc manages"},
		{"authorizer.class.name=", ""},
		{"super.users=User:ANONYMOUS", "super.users is set by kafka-bootc"},
		{"allow.everyone.if.no.acl.found=true", "allow.everyone.if.no.acl.found is set by kafka-bootc"},
	} {
		s := Default()
		s.Broker.Settings = []string{tc.setting}
		_, err := Plan(s)
		if err == nil || tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.setting, err, tc.want)
		}
	}
	for _, ok := range []string{"listener.name.broker.max.connections=500", "num.partitions=6", "log.retention.hours=72", "listener.name.broker.connections.max.idle.ms=60000"} {
		s := Default()
		s.Broker.Settings = []string{ok}
		if _, err := Plan(s); err != nil {
			t.Errorf("%s, not about security: %v", ok, err)
		}
	}
}
