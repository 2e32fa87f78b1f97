package nodes

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"dagger/kafka-bootc/internal/shell"
)

// Entry is one file or symlink of the rendered tree.
type Entry struct {
	// Path is relative to the tree's root, slash-separated.
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Target, when set, makes the entry a symlink.
	Target string
}

// BibConfigPath is where the tree keeps bootc-image-builder's config.
const BibConfigPath = "bib/config.toml"

// Images plans every image: the role images, then the node images.
func (c *Cluster) Images() ([]Image, error) {
	var imgs []Image
	for _, r := range Roles {
		img, err := c.RoleImage(r)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	for _, n := range c.Nodes {
		img, err := c.NodeImage(n)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// Tree renders the cluster in the reference's layout: a directory per image
// with its files at their absolute paths, its bound-image symlinks and a
// Containerfile, plus the bootc-image-builder config. Entries are sorted by
// path, so the same cluster always renders the same bytes.
func (c *Cluster) Tree() ([]Entry, error) {
	imgs, err := c.Images()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, img := range imgs {
		out = append(out, Entry{Path: img.Name + "/Containerfile", Content: img.Containerfile(), Mode: 0o644})
		for _, f := range img.Files {
			out = append(out, Entry{Path: img.Name + f.Path, Content: f.Content, Mode: f.Mode})
		}
		for _, l := range img.Symlinks {
			out = append(out, Entry{Path: img.Name + l.Path, Target: l.Target, Mode: fs.ModeSymlink | 0o777})
		}
	}
	cfg, err := c.Disk.Config().TOML()
	if err != nil {
		return nil, err
	}
	out = append(out, Entry{Path: BibConfigPath, Content: cfg, Mode: 0o644})
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Containerfile renders the image plan for podman build, run from the
// image's directory of the tree: the same steps as the Dagger build.
func (img Image) Containerfile() []byte {
	from := img.From
	if !strings.Contains(from, "/") {
		from = "localhost/" + from
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s, rendered by kafka-bootc. Build it from this directory:\n", img.Name)
	fmt.Fprintf(&b, "#   podman build -t localhost/%s .\n", img.Name)
	fmt.Fprintf(&b, "ARG BASE=%s\nFROM ${BASE}\n", from)
	for _, cmd := range img.Run {
		b.WriteString("RUN ")
		if cmd.Cache != "" {
			fmt.Fprintf(&b, "--mount=type=cache,target=%s ", cmd.Cache)
		}
		b.WriteString(shell.Join(cmd.Args) + "\n")
	}
	for _, d := range img.Downloads {
		b.WriteString("RUN " + d.Shell() + "\n")
	}
	for _, dir := range img.topDirs() {
		fmt.Fprintf(&b, "COPY %s/ /%s/\n", dir, dir)
	}
	for _, cmd := range img.Check {
		b.WriteString("RUN " + shell.Join(cmd.Args) + "\n")
	}
	for _, l := range img.Labels {
		fmt.Fprintf(&b, "LABEL %s=%q\n", l.Name, l.Value)
	}
	return []byte(b.String())
}

// Shell is the shell command that fetches the download and fails unless it
// has its digest: the Containerfile's equivalent of Dagger's checked HTTP.
func (d Download) Shell() string {
	return fmt.Sprintf("curl -fsSL --create-dirs -o %s %s && %s && chmod %o %s",
		shell.Join([]string{d.Path}), shell.Join([]string{d.URL}), d.checkShell(), d.Mode.Perm(), shell.Join([]string{d.Path}))
}

// Check is the command that fails unless the file at Path has the
// download's digest: for a file that reached the image another way than
// from URL, such as a jar the user gives.
func (d Download) Check() []string {
	return []string{"sh", "-c", d.checkShell()}
}

func (d Download) checkShell() string {
	return fmt.Sprintf("echo %s | sha256sum -c -", shell.Join([]string{d.SHA256 + "  " + d.Path}))
}

// topDirs are the top-level directories that the image's files and
// symlinks live in, sorted.
func (img Image) topDirs() []string {
	var dirs []string
	add := func(p string) {
		top, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if !slices.Contains(dirs, top) {
			dirs = append(dirs, top)
		}
	}
	for _, f := range img.Files {
		add(f.Path)
	}
	for _, l := range img.Symlinks {
		add(l.Path)
	}
	slices.Sort(dirs)
	return dirs
}

// WriteTree writes entries under dir, which must not exist yet. It writes
// into a temporary directory beside dir and renames it into place, so dir
// either appears whole or not at all.
func WriteTree(dir string, entries []Entry) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("write tree: %s already exists", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("write tree: %w", err)
	}
	if err := writeEntries(tmp, entries); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("write tree: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("write tree: %w", err)
	}
	return nil
}

func writeEntries(root string, entries []Entry) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !fs.ValidPath(e.Path) {
			return fmt.Errorf("%q: not a relative path inside the tree", e.Path)
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if e.Target != "" {
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
			continue
		}
		if err := os.WriteFile(p, e.Content, e.Mode.Perm()); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask; the tree's is not.
		if err := os.Chmod(p, e.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// ReadTree reads a tree written by WriteTree, for comparing it with a
// rendering. Directories are implied by their files.
func ReadTree(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := Entry{Path: filepath.ToSlash(rel)}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e.Mode = info.Mode()
		if d.Type()&fs.ModeSymlink != 0 {
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		} else if e.Content, err = os.ReadFile(p); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}
