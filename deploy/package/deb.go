package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// options say what to package and where to put it.
type options struct {
	binDir  string // gannet, smtpblast, smtpsink
	repoDir string // deploy/systemd/gannet.service, README.md, docs/contract.md
	outDir  string
	version string
	arch    string
	// compression of the data archive: "" (gzip), "xz", "zstd" or "none"
	// (the install test: quicker to build, dpkg takes it as well).
	compression string
}

// Installed paths.
const (
	configPath = "/etc/gannet/gannet.toml"
	unitPath   = "/usr/lib/systemd/system/gannet.service"
	dataDir    = "/var/lib/gannet"
)

// buildDeb writes gannet_VERSION-1_ARCH.deb into o.outDir and returns its path.
func buildDeb(o options) (string, error) {
	for _, d := range []*string{&o.binDir, &o.repoDir, &o.outDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return "", err
		}
		*d = abs
	}
	gannet := filepath.Join(o.binDir, "gannet")
	def, err := exec.Command(gannet, "config", "default").Output()
	if err != nil {
		return "", fmt.Errorf("%s config default: %w", gannet, err)
	}
	conf, err := packagedConfig(def)
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "gannet-package-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	confFile := filepath.Join(work, "gannet.toml")
	if err := os.WriteFile(confFile, conf, 0o644); err != nil {
		return "", err
	}
	// The scripts sit next to this program's source (the working directory
	// of `go run` and `go test`).
	scripts, err := filepath.Abs("scripts")
	if err != nil {
		return "", err
	}

	contents := files.Contents{
		{Source: confFile, Destination: configPath, Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Mode: 0o640}},
		{Source: filepath.Join(o.repoDir, "deploy/systemd/gannet.service"), Destination: unitPath,
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Source: filepath.Join(o.repoDir, "README.md"), Destination: "/usr/share/doc/gannet/README.md",
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: "/etc/gannet", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Destination: dataDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
	}
	if _, err := os.Stat(filepath.Join(o.repoDir, "docs/contract.md")); err == nil {
		contents = append(contents, &files.Content{Source: filepath.Join(o.repoDir, "docs/contract.md"),
			Destination: "/usr/share/doc/gannet/contract.md", FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	for _, b := range []string{"gannet", "smtpblast", "smtpsink"} {
		src := filepath.Join(o.binDir, b)
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("binary missing (make build first): %w", err)
		}
		contents = append(contents, &files.Content{Source: src, Destination: "/usr/bin/" + b,
			FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "gannet",
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "mail",
		Priority:      "optional",
		Maintainer:    "Gannet developers <gannet@example.invalid>",
		Description: "outbound SMTP relay (a sending MTA)\n" +
			"Gannet takes mail from applications over SMTP or an HTTP JSON API, spools\n" +
			"it durably, signs it with DKIM and delivers it to the recipients' MX hosts,\n" +
			"shaping the traffic per destination. Runs as the gannet user under systemd.",
		Homepage: "https://gannet.example.invalid/",
		License:  "Proprietary",
		Overridables: nfpm.Overridables{
			Depends:  []string{"passwd"},
			Deb:      nfpm.Deb{Compression: o.compression},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst.sh"),
				PreRemove:   filepath.Join(scripts, "prerm.sh"),
				PostRemove:  filepath.Join(scripts, "postrm.sh"),
			},
		},
	})
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.outDir, fmt.Sprintf("gannet_%s-1_%s.deb", o.version, o.arch))
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("building %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return out, nil
}
