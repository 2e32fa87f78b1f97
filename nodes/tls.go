package nodes

import (
	"crypto/x509/pkix"
	"fmt"
	"path"
	"slices"
	"strings"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/pki"
	"dagger/kafka-bootc/quadlets"
)

// The security modes of a cluster.
const (
	// SecurityTLS is mutual TLS on every listener, with the cluster CA, and
	// KRaft's StandardAuthorizer. It is the default.
	SecurityTLS = "tls"
	// SecurityPlaintext is no encryption, no authentication and no
	// authorization: for labs on a trusted network only.
	SecurityPlaintext = "plaintext"
	// DefaultAdminUser is the client identity that is a super user.
	DefaultAdminUser = "admin"
)

// Where a node's TLS material lives. bootc-image-builder writes the host
// files under /etc, which bootc keeps across upgrades; no image holds them.
// The containers get them as podman secrets (see secretFile).
const (
	hostTLSDir = "/etc/kafka-bootc/tls"
	// NodePEMPath is the node's key and certificate, one PEM file: Kafka's
	// PEM key store reads both from one file, and Go's TLS (node-exporter)
	// reads each half of it.
	NodePEMPath = hostTLSDir + "/node.pem"
	// CACertPath is the cluster CA's certificate: the trust store.
	CACertPath = hostTLSDir + "/ca.crt"

	// Inside the containers the files keep their host paths.
	ctrNodePEM = NodePEMPath
	ctrCACert  = CACertPath
	// ctrServerProperties is where the apache/kafka image's start script
	// looks for a mounted server.properties: KafkaDockerWrapper (3.8.0)
	// copies /mnt/shared/config/server.properties and appends the
	// properties of the KAFKA_ environment variables after it.
	ctrServerProperties = "/mnt/shared/config/server.properties"
	// ctrClientProperties is the client configuration of the health probes,
	// which run Kafka's tools inside the Kafka container.
	ctrClientProperties  = "/etc/kafka-bootc/client.properties"
	ctrExporterWebConfig = "/etc/kafka-bootc/node-exporter.yml"

	// In the role image.
	kafkaConfigDir      = "/usr/share/kafka-bootc/kafka"
	serverPropertiesSrc = kafkaConfigDir + "/server.properties"
	clientPropertiesSrc = kafkaConfigDir + "/client.properties"
	exporterWebSrc      = "/usr/share/kafka-bootc/node-exporter/web.yml"

	// exporterUID is the user of the prom/node-exporter image (USER nobody).
	exporterUID = 65534
	// nodeOrg is the organization of every node certificate: the mapping
	// rules tell nodes from clients by it.
	nodeOrg = "kafka-bootc"
)

// Listener names. In TLS mode the broker listener is not called SSL: the
// apache/kafka image's configure script (3.8.0) switches to its own JKS key
// store, and exits without its files, when KAFKA_ADVERTISED_LISTENERS holds
// "SSL://". "BROKER://" does not.
const (
	plaintextListener = "PLAINTEXT"
	tlsBrokerListener = "BROKER"
	controllerListen  = "CONTROLLER"
)

// Principal is the Kafka principal that every node of the role maps to: one
// identity per role, as Strimzi gives all of a cluster's brokers one, so
// that adding a node changes no other node's super users.
func (r Role) Principal() string { return r.Unit() }

// reservedNames cannot be clients: they are the nodes' principals.
var reservedNames = []string{Broker.Principal(), Controller.Principal()}

// CheckClientName reports whether name can be a client identity (and so the
// admin user): a short principal name that is not a node's.
func CheckClientName(field, name string) error {
	if err := pki.CheckName(name); err != nil {
		return fmt.Errorf("%s %w", field, err)
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("%s %q: is the principal of the cluster's nodes; choose another name", field, name)
	}
	return nil
}

// principalRules is ssl.principal.mapping.rules: a node certificate
// (CN=<node>,OU=<role unit>,O=kafka-bootc) maps to its role's principal, a
// client certificate (CN=<name> alone) to its name, and anything else to
// its whole distinguished name, which no ACL names. Kafka matches each rule
// against the whole name (Matcher.matches), so the patterns need no
// anchors. The rules hold "$", which a systemd command line would expand,
// so they live in the properties file, not in an environment variable.
var principalRules = strings.Join([]string{
	fmt.Sprintf("RULE:CN=[a-z0-9-]+,OU=(%s),O=%s/$1/", strings.Join(reservedNames, "|"), nodeOrg),
	"RULE:CN=([a-z][a-z0-9._-]*)/$1/",
	"DEFAULT",
}, ",")

// SecurityProperties are the TLS and authorization properties of every
// node in TLS mode, sorted by name: the role image's server.properties.
// They are none in plaintext mode. They are the same for every release
// rendered: Kafka 4's security docs keep StandardAuthorizer, the PEM
// stores and the mapping rules' syntax, and 4.4's change to PEM stores
// (an in-memory key store of the JDK's default type instead of PKCS12)
// is the same type on the image's JDK. The golden trees of 3.8.0 and
// 4.4.0 show them equal.
func (c *Cluster) SecurityProperties() []Setting {
	if !c.TLS {
		return nil
	}
	supers := []string{"User:" + Broker.Principal(), "User:" + Controller.Principal(), "User:" + c.AdminUser}
	return sortedSettings(map[string]string{
		"ssl.client.auth":                       "required",
		"ssl.keystore.type":                     "PEM",
		"ssl.keystore.location":                 ctrNodePEM,
		"ssl.truststore.type":                   "PEM",
		"ssl.truststore.location":               ctrCACert,
		"ssl.principal.mapping.rules":           principalRules,
		"authorizer.class.name":                 "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found":        "false",
		"super.users":                           strings.Join(supers, ";"),
		"ssl.endpoint.identification.algorithm": "https",
	})
}

// propertiesFile renders settings as a Java properties file. Values here
// never hold a backslash, the one character the format would change.
func propertiesFile(header string, settings []Setting) []byte {
	var b strings.Builder
	b.WriteString(header)
	for _, s := range settings {
		fmt.Fprintf(&b, "%s=%s\n", s.Name, s.Value)
	}
	return []byte(b.String())
}

// serverProperties is the file mounted as the image's server.properties.
func (c *Cluster) serverProperties() []byte {
	return propertiesFile("# Kafka's TLS and authorization settings, rendered by kafka-bootc. The\n"+
		"# node's other settings come from the container's environment.\n", c.SecurityProperties())
}

// clientProperties is the health probes' client configuration: the node's
// own identity, a super user. The probes connect to their own node over
// loopback, a name that no node certificate holds, so they skip the host
// name check; the node's certificate must still be signed by the CA.
func (c *Cluster) clientProperties() []byte {
	return propertiesFile("# The health probes' client settings, rendered by kafka-bootc.\n", []Setting{
		{"security.protocol", "SSL"},
		{"ssl.keystore.type", "PEM"},
		{"ssl.keystore.location", ctrNodePEM},
		{"ssl.truststore.type", "PEM"},
		{"ssl.truststore.location", ctrCACert},
		{"ssl.endpoint.identification.algorithm", ""},
	})
}

// exporterWebConfig is node-exporter's --web.config.file: TLS with the
// node's certificate; a scraper may present a client certificate, and one
// that it presents must be signed by the cluster CA.
func exporterWebConfig() []byte {
	return fmt.Appendf(nil, `# node-exporter's TLS settings, rendered by kafka-bootc.
tls_server_config:
  cert_file: %[1]s
  key_file: %[1]s
  client_ca_file: %[2]s
  client_auth_type: VerifyClientCertIfGiven
`, ctrNodePEM, ctrCACert)
}

// secretFile is a host file that a container reads, handed over as a podman
// secret: podman copies it into the container's own run directory, owned by
// the container's user and labelled for the container. So no host file is
// relabelled for the container, and none belongs to the container's uid,
// which on the host is the disk user's (1000). The Kafka unit re-creates
// its secrets from the files at every start, so a replaced file takes
// effect at the next restart.
type secretFile struct {
	host, container string
	mode            string
}

// secret renders the quadlet Secret= value and the command that makes the
// secret, for the container unit and user uid.
func (f secretFile) secret(unit string, uid int) (secret string, create []string) {
	name := unit + "-" + strings.NewReplacer(".", "-").Replace(path.Base(f.container))
	return fmt.Sprintf("%s,type=mount,target=%s,uid=%d,gid=%d,mode=%s", name, f.container, uid, uid, f.mode),
		[]string{podmanPath, "secret", "create", "--replace", name, f.host}
}

// withSecrets hands files to a unit's container and makes the unit refuse
// to start, with systemd naming the file, when a node file is missing or
// empty: a disk built without the node's TLS material cannot run an image
// built for TLS.
func withSecrets(ctr quadlets.Container, uid int, files []secretFile) quadlets.Container {
	for _, f := range files {
		secret, create := f.secret(ctr.Name, uid)
		ctr.Secrets = append(ctr.Secrets, secret)
		ctr.ExecStartPre = append(ctr.ExecStartPre, create)
		if strings.HasPrefix(f.host, hostTLSDir+"/") {
			ctr.Asserts = append(ctr.Asserts, f.host)
		}
	}
	return ctr
}

// kafkaSecrets are the files the Kafka container reads in TLS mode.
func kafkaSecrets() []secretFile {
	return []secretFile{
		{NodePEMPath, ctrNodePEM, "0400"},
		{CACertPath, ctrCACert, "0444"},
		// The image's KafkaDockerWrapper copies the mounted file to
		// /opt/kafka/config, mode and all (Java's Files.copy), and appends
		// the environment's settings to the copy: read-only, every start
		// fails with "error while preparing configs". The real Kafka of
		// internal/realkafka found it.
		{serverPropertiesSrc, ctrServerProperties, "0644"},
		{clientPropertiesSrc, ctrClientProperties, "0444"},
	}
}

// exporterSecrets are the files node-exporter reads in TLS mode.
func exporterSecrets() []secretFile {
	return []secretFile{
		{NodePEMPath, ctrNodePEM, "0400"},
		{CACertPath, ctrCACert, "0444"},
		{exporterWebSrc, ctrExporterWebConfig, "0444"},
	}
}

// NodeIdentity is what a node's certificate says: CN the node's name, OU
// its role's image, O kafka-bootc; its names are the node's name, its
// hostname when that differs (a domain), and the extra names given for it.
func (c *Cluster) NodeIdentity(n Node, extra []pki.SAN, days int) pki.Identity {
	id := pki.Identity{
		Subject:  pkix.Name{CommonName: n.Name, OrganizationalUnit: []string{n.Role.Unit()}, Organization: []string{nodeOrg}},
		DNSNames: []string{n.Name},
		Server:   true,
		Days:     days,
	}
	if n.Hostname != n.Name {
		id.DNSNames = append(id.DNSNames, n.Hostname)
	}
	for _, s := range extra {
		switch {
		case s.IP != nil && !slices.ContainsFunc(id.IPs, s.IP.Equal):
			id.IPs = append(id.IPs, s.IP)
		case s.DNS != "" && !slices.Contains(id.DNSNames, s.DNS):
			id.DNSNames = append(id.DNSNames, s.DNS)
		}
	}
	return id
}

// ClientIdentity is a client's certificate subject: CN its name, alone.
func ClientIdentity(name string, days int) pki.Identity {
	return pki.Identity{Subject: pkix.Name{CommonName: name}, Days: days}
}

// ParseExtraNames reads NODE=NAME entries (a DNS name or an IP address),
// repeatable, into the extra names of each node.
func (c *Cluster) ParseExtraNames(entries []string) (map[string][]pki.SAN, error) {
	out := map[string][]pki.SAN{}
	for _, e := range entries {
		node, name, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("extra name %q: must be NODE=NAME, for example kafka-broker-1=10.0.0.11", e)
		}
		if _, err := c.Node(node); err != nil {
			return nil, fmt.Errorf("extra name %q: %w", e, err)
		}
		san, err := pki.ParseSAN(name)
		if err != nil {
			return nil, fmt.Errorf("extra name %w", err)
		}
		out[node] = append(out[node], san)
	}
	return out, nil
}

// NodeTLSFiles are the files that bootc-image-builder writes on a node's
// disk: its key and certificate, readable by root alone, and the CA
// certificate.
func NodeTLSFiles(nodePEM, caPEM []byte) ([]bib.Directory, []bib.File) {
	return []bib.Directory{{Path: hostTLSDir, Mode: "0700", User: "root", Group: "root", EnsureParents: true}},
		[]bib.File{
			{Path: NodePEMPath, Mode: "0400", User: "root", Group: "root", Data: string(nodePEM)},
			{Path: CACertPath, Mode: "0644", User: "root", Group: "root", Data: string(caPEM)},
		}
}

// Bootstrap lists the brokers' client addresses, host:port.
func (c *Cluster) Bootstrap() string {
	var addrs []string
	for _, n := range c.Nodes {
		if n.Role == Broker {
			addrs = append(addrs, fmt.Sprintf("%s:%d", n.Hostname, c.Roles[Broker].Port))
		}
	}
	return strings.Join(addrs, ",")
}

// ClientFiles are the files of a client identity, ready to use: its key
// (PKCS#8) and certificate, the CA certificate, client.properties for
// Kafka's tools with the same three inline (so it works from any
// directory), and kcat.sh, which runs kcat with the files beside it.
func (c *Cluster) ClientFiles(name string, certPEM, keyPEM, caPEM []byte) []File {
	props := fmt.Sprintf(`# Kafka client settings for %[1]s, rendered by kafka-bootc. Use them with
# Kafka's tools, for example:
#   kafka-topics.sh --bootstrap-server %[2]s --command-config client.properties --list
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.key=%[3]s
ssl.keystore.certificate.chain=%[4]s
ssl.truststore.type=PEM
ssl.truststore.certificates=%[5]s
`, name, c.Bootstrap(), propertyPEM(keyPEM), propertyPEM(certPEM), propertyPEM(caPEM))
	kcat := fmt.Sprintf(`#!/bin/sh
# kcat as %[1]s, with the files beside this script, for example:
#   ./kcat.sh -b %[2]s -L
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
exec kcat -X security.protocol=ssl -X "ssl.key.location=$dir/client.key" \
	-X "ssl.certificate.location=$dir/client.crt" -X "ssl.ca.location=$dir/ca.crt" "$@"
`, name, c.Bootstrap())
	return []File{
		{Path: "client.key", Content: keyPEM, Mode: 0o600, Private: true},
		{Path: "client.crt", Content: certPEM, Mode: 0o644},
		{Path: "ca.crt", Content: caPEM, Mode: 0o644},
		{Path: "client.properties", Content: []byte(props), Mode: 0o600, Private: true},
		{Path: "kcat.sh", Content: []byte(kcat), Mode: 0o755},
	}
}

// propertyPEM writes PEM text as a Java properties value: each line ends
// in an escaped newline and continues on the next line, which Kafka's PEM
// parser reads as the file it was.
func propertyPEM(pemText []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemText)), "\n")
	return strings.Join(lines, "\\n\\\n")
}
