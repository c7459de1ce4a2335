package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSkopeoSyncScopedDirIsUpToDate syncs a repository of a registry with a port into a dir:
// tree with `skopeo sync --scoped` (which names each image HOST:PORT/REPO:TAG), then runs
// `imgcopy sync --scoped` over the same tree: imgcopy must use skopeo's names and find every
// image up to date, copying nothing, rather than write a second tree beside it.
func TestSkopeoSyncScopedDirIsUpToDate(t *testing.T) {
	t.Parallel()
	dir := setup(t, "skopeo", "docker-registry")
	host := startRegistry(t)
	src := exampleImage(t)
	for _, tag := range []string{"1.0", "2.0"} {
		imgcopyCopy(t, src, "docker://"+host+"/team/app:"+tag)
	}
	tree := filepath.Join(dir, "tree")
	run(t, "skopeo", "--insecure-policy", "sync", "--scoped", "--src", "docker", "--dest", "dir", "--src-tls-verify=false", host+"/team/app", tree)
	for _, tag := range []string{"1.0", "2.0"} {
		if _, err := os.Stat(filepath.Join(tree, host, "team", "app:"+tag, "manifest.json")); err != nil {
			t.Fatalf("skopeo sync --scoped did not write %s/team/app:%s as expected: %v", host, tag, err)
		}
	}

	report := filepath.Join(dir, "report.json")
	imgcopy(t, "sync", "--scoped", "--src-tls-verify=false", "--report", report, "docker://"+host+"/team/app", "dir:"+tree)
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Counts map[string]int `json:"counts"`
		Images []struct {
			Destination, Action string
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if rep.Counts["up-to-date"] != 2 || len(rep.Images) != 2 {
		t.Errorf("imgcopy sync over skopeo's tree: counts %v, images %+v; want both up to date", rep.Counts, rep.Images)
	}
	entries, err := os.ReadDir(tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != host {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the tree holds %v after imgcopy sync, want only skopeo's %s", names, host)
	}
}
