// Command package builds the Gannet Debian package (`make package`) with
// nFPM used as a library:
//
//	go -C deploy/package run . -bin ../../bin -out ../../dist
//
// The package holds /usr/bin/gannet, /usr/bin/smtpblast, /usr/bin/smtpsink,
// /etc/gannet/gannet.toml (the annotated default of `gannet config default`
// with the spool and logs under /var/lib/gannet; a conffile, so dpkg keeps an
// administrator's edits on upgrade), the systemd unit of deploy/systemd, and
// the maintainer scripts of scripts/: postinst makes the gannet system user
// and group and /var/lib/gannet owned by them; purge removes /var/lib/gannet.
//
// It is a module of its own so that nFPM and its dependencies stay out of the
// gannet module (and so out of the relay's binary and its dependency graph).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin", "../../bin", "directory holding the gannet, smtpblast and smtpsink binaries to package")
	flag.StringVar(&o.repoDir, "repo", "../..", "the repository (for deploy/systemd/gannet.service and README.md)")
	flag.StringVar(&o.outDir, "out", "../../dist", "directory the .deb is written to")
	flag.StringVar(&o.version, "version", "0.1.0", "package version")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "Debian architecture of the binaries")
	flag.Parse()
	path, err := buildDeb(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
