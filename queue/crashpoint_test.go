package queue

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"

	"gannet/internal/vfs"
)

// syncGate holds fsyncs while armed: each held sync reports on arrived,
// waits for open, and reports on passed when it has returned.
type syncGate struct {
	mu      sync.Mutex
	held    chan struct{} // nil: syncs pass
	arrived chan struct{}
	passed  chan struct{}
}

func (g *syncGate) arm() {
	g.mu.Lock()
	g.held = make(chan struct{})
	g.arrived = make(chan struct{}, 64)
	g.passed = make(chan struct{}, 64)
	g.mu.Unlock()
}

func (g *syncGate) open() {
	g.mu.Lock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
	g.mu.Unlock()
}

func (g *syncGate) sync(do func() error) error {
	g.mu.Lock()
	held, arrived, passed := g.held, g.arrived, g.passed
	g.mu.Unlock()
	if held == nil {
		return do()
	}
	select {
	case arrived <- struct{}{}:
	default:
	}
	<-held
	err := do()
	select {
	case passed <- struct{}{}:
	default:
	}
	return err
}

// waitOn waits (bounded) for one token on ch.
func waitOn(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// tailFS is the segment filesystem of a spool under test: it remembers how
// many bytes of each file the last successful fsync covered, and its
// fsyncs pass through a gate.
type tailFS struct {
	vfs.FS
	gate   syncGate
	mu     sync.Mutex
	synced map[string]int64
}

func (f *tailFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &tailFile{File: file, fs: f, name: name}, nil
}

func (f *tailFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	return f.wrap(name, file, err)
}

func (f *tailFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	return f.wrap(name, file, err)
}

type tailFile struct {
	vfs.File
	fs   *tailFS
	name string
}

func (t *tailFile) Sync() error {
	return t.fs.gate.sync(func() error {
		st, err := t.File.Stat()
		if err != nil {
			return err
		}
		if err := t.File.Sync(); err != nil {
			return err
		}
		t.fs.mu.Lock()
		t.fs.synced[t.name] = st.Size()
		t.fs.mu.Unlock()
		return nil
	})
}

// walGateFS is Pebble's filesystem under test (a crashable MemFS) with the
// fsyncs of its WAL files passing through a gate.
type walGateFS struct {
	pebblevfs.FS
	gate *syncGate
}

func (f walGateFS) wrap(name string, file pebblevfs.File, err error) (pebblevfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return file, err
	}
	return walFile{File: file, gate: f.gate}, nil
}

func (f walGateFS) Create(name string, c pebblevfs.DiskWriteCategory) (pebblevfs.File, error) {
	file, err := f.FS.Create(name, c)
	return f.wrap(name, file, err)
}

func (f walGateFS) ReuseForWrite(oldname, newname string, c pebblevfs.DiskWriteCategory) (pebblevfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, c)
	return f.wrap(newname, file, err)
}

func (f walGateFS) OpenReadWrite(name string, c pebblevfs.DiskWriteCategory, opts ...pebblevfs.OpenOption) (pebblevfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, c, opts...)
	return f.wrap(name, file, err)
}

type walFile struct {
	pebblevfs.File
	gate *syncGate
}

func (w walFile) Sync() error     { return w.gate.sync(w.File.Sync) }
func (w walFile) SyncData() error { return w.gate.sync(w.File.SyncData) }
func (w walFile) SyncTo(n int64) (full bool, err error) {
	err = w.gate.sync(func() error {
		var e error
		full, e = w.File.SyncTo(n)
		return e
	})
	return full, err
}

// segImage is a crash image of the segment directory: each file's bytes as
// a crash could leave them, given what its last fsync covered.
type segImage map[string][]byte

// tailCuts are the ways a crash can leave the bytes written after a
// segment's last fsync: gone, half there (a torn record), zeroed (the size
// reached the disk, the data did not), or all there.
var tailCuts = []string{"none", "torn", "zeros", "all"}

func (f *tailFS) image(t *testing.T, segDir, cut string) segImage {
	t.Helper()
	img := segImage{}
	ents, err := os.ReadDir(segDir)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range ents {
		path := filepath.Join(segDir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		synced := min(f.synced[path], int64(len(data)))
		unsynced := data[synced:]
		switch cut {
		case "none":
			data = data[:synced]
		case "torn":
			data = data[:synced+int64(len(unsynced)/2)]
		case "zeros":
			data = append(data[:synced:synced], make([]byte, len(unsynced))...)
		}
		img[e.Name()] = bytes.Clone(data)
	}
	return img
}

// TestCrashAtEveryPointOfAGroupCommit stops a group commit at each point a
// crash can hit it — records written but neither fsync done, only the
// segment's fsync done, only the index's, both — takes crash images there
// (every way the unsynced segment bytes can be left: gone, torn, zeroed,
// all there; the index with exactly its synced WAL, or with every unsynced
// write there too), and opens each image. Every message acknowledged
// before the crash must come back with its body intact; nothing else may
// come back but messages of the group in flight, each intact; nothing is
// quarantined; and an index entry whose record did not reach the disk is
// dropped as never acknowledged.
func TestCrashAtEveryPointOfAGroupCommit(t *testing.T) {
	for _, point := range []string{"neither synced", "segment synced", "index synced", "both synced"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			segs := &tailFS{FS: vfs.OS{}, synced: map[string]int64{}}
			var walGate syncGate
			mem := pebblevfs.NewCrashableMem()
			s, err := Open(Options{Dir: dir, FS: segs, indexFS: walGateFS{FS: mem, gate: &walGate}, SegmentSize: 32 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			bodies := map[string][]byte{}
			acked := map[string]bool{}
			// Acknowledged: several groups over two segments.
			for i := range 12 {
				id := fmt.Sprintf("a%02d", i)
				bodies[id] = testMail(uint64(i), 3000)
				if err := s.Append(testMessage(id, 1), bodies[id]); err != nil {
					t.Fatal(err)
				}
				acked[id] = true
			}
			// The group in flight: 8 appends; the first group the
			// committer forms of them is the one stopped.
			for i := range 8 {
				bodies[fmt.Sprintf("b%02d", i)] = testMail(uint64(100+i), 3000)
			}
			if point != "both synced" {
				segs.gate.arm()
				walGate.arm()
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range 8 {
				id := fmt.Sprintf("b%02d", i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.Append(testMessage(id, 1), bodies[id]); err == nil {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}()
			}
			switch point {
			case "neither synced":
				waitOn(t, segs.gate.arrived, "the segment fsync")
				waitOn(t, walGate.arrived, "the index fsync")
			case "segment synced":
				waitOn(t, segs.gate.arrived, "the segment fsync")
				waitOn(t, walGate.arrived, "the index fsync")
				segs.gate.open()
				waitOn(t, segs.gate.passed, "the segment fsync to return")
			case "index synced":
				waitOn(t, segs.gate.arrived, "the segment fsync")
				waitOn(t, walGate.arrived, "the index fsync")
				walGate.open()
				waitOn(t, walGate.passed, "the index fsync to return")
			case "both synced":
				wg.Wait()
			}
			// What was acknowledged when the crash came.
			mu.Lock()
			ackedAtCrash := maps.Clone(acked)
			mu.Unlock()
			if want := map[bool]int{true: 20, false: 12}[point == "both synced"]; len(ackedAtCrash) != want {
				t.Fatalf("%d messages acknowledged at the crash, want %d", len(ackedAtCrash), want)
			}
			// The crash images, taken while the group is stopped.
			type image struct {
				name     string
				cut      string
				indexPct int
				segs     segImage
				index    *pebblevfs.MemFS
			}
			var images []image
			for _, cut := range tailCuts {
				for _, pct := range []int{0, 100} {
					cfg := pebblevfs.CrashCloneCfg{UnsyncedDataPercent: pct}
					if pct > 0 {
						cfg.RNG = rand.New(rand.NewPCG(1, 2))
					}
					images = append(images, image{
						name:     fmt.Sprintf("segment tail %s, index %d%% of unsynced", cut, pct),
						cut:      cut,
						indexPct: pct,
						segs:     segs.image(t, filepath.Join(dir, "segments"), cut),
						index:    mem.CrashClone(cfg),
					})
				}
			}
			segs.gate.open()
			walGate.open()
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, img := range images {
				t.Run(img.name, func(t *testing.T) {
					got, dropped := checkCrashImage(t, dir, img.segs, img.index, bodies, ackedAtCrash)
					inFlight := 0
					for id := range got {
						if !ackedAtCrash[id] {
							inFlight++
						}
					}
					t.Logf("%d recovered, %d of them unacknowledged; %d entries dropped at Open", len(got), inFlight, dropped)
					switch {
					case point == "neither synced" && img.indexPct == 0, point == "segment synced" && img.indexPct == 0:
						if inFlight != 0 || dropped != 0 {
							t.Errorf("index batch not durable: %d unacknowledged recovered, %d dropped; want none", inFlight, dropped)
						}
					case point == "segment synced":
						if inFlight == 0 {
							t.Errorf("records and entries durable: none of the group recovered")
						}
					case point == "index synced" && img.cut != "all":
						if dropped == 0 {
							t.Errorf("entries durable, records cut: none dropped")
						}
						if img.cut != "torn" && inFlight != 0 {
							t.Errorf("entries durable, records gone: %d recovered", inFlight)
						}
					}
				})
			}
		})
	}
}

// checkCrashImage opens a spool in dir (its segments replaced by the
// image's) on a crash image and checks that it holds every acknowledged
// message and nothing else but messages of the stopped group ("b…"), all
// intact, none quarantined; that it takes new mail; and that a second
// Open finds the same. It returns what the first Open found and how many
// entries it dropped.
func checkCrashImage(t *testing.T, dir string, segs segImage, index *pebblevfs.MemFS, bodies map[string][]byte, acked map[string]bool) (map[string]*Message, int) {
	t.Helper()
	segDir := filepath.Join(dir, "segments")
	if err := os.RemoveAll(segDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(segDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range segs {
		if err := os.WriteFile(filepath.Join(segDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Dir: dir, indexFS: index}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := scanAll(t, s)
	for id, m := range got {
		if !acked[id] && !strings.HasPrefix(id, "b") {
			t.Errorf("%s came back but was never appended", id)
		}
		body, err := s.Body(m)
		if err != nil || !bytes.Equal(body, bodies[id]) {
			t.Errorf("Body(%s) = %d bytes, %v; want its %d bytes intact", id, len(body), err, len(bodies[id]))
		}
	}
	for id := range acked {
		if got[id] == nil {
			t.Errorf("acknowledged %s lost", id)
		}
	}
	st := s.Stats()
	if st.Quarantined != 0 {
		t.Errorf("%d quarantined, want none", st.Quarantined)
	}
	m := testMessage("z-after", 1)
	if err := s.Append(m, []byte("after the crash\r\n")); err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	s.Close()
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again := scanAll(t, s2)
	if len(again) != len(got)+1 || again["z-after"] == nil {
		t.Errorf("second Open: %d messages, want %d and z-after", len(again), len(got)+1)
	}
	if st := s2.Stats(); st.DroppedAtOpen != 0 {
		t.Errorf("second Open dropped %d more entries", st.DroppedAtOpen)
	}
	return got, st.DroppedAtOpen
}
