// Command mkimage writes a container image FROM scratch: one uncompressed
// layer holding the given files, as an OCI image-layout archive that
// `ctr images import` (and `docker load`, through the manifest.json it also
// writes) accept. Its output is byte-for-byte reproducible: fixed timestamps,
// sorted entries, root ownership.
//
//	mkimage -o pause.tar -name localhost/tandem-cluster/pause:1.0 \
//	    -entrypoint /pause -user 65535:65535 -file /pause=bin/pause
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	output     string
	name       string
	entrypoint listFlag
	user       string
	files      listFlag // /path/in/image=host/path
	ports      listFlag // 53/udp
	env        listFlag // KEY=value
}

func main() {
	var o options
	flag.StringVar(&o.output, "o", "", "output archive (required)")
	flag.StringVar(&o.name, "name", "", "image name with tag, e.g. localhost/x/pause:1.0 (required)")
	flag.Var(&o.entrypoint, "entrypoint", "entrypoint argument (repeatable)")
	flag.StringVar(&o.user, "user", "", "user[:group] the image runs as")
	flag.Var(&o.files, "file", "IMAGE_PATH=HOST_PATH to add, mode kept (repeatable)")
	flag.Var(&o.ports, "port", "exposed port, e.g. 53/udp (repeatable)")
	flag.Var(&o.env, "env", "KEY=value environment entry (repeatable)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

// epoch is every timestamp in the image, so equal inputs give equal digests.
var epoch = time.Unix(0, 0).UTC()

type blob struct {
	mediaType string
	data      []byte
}

func (b blob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (b blob) descriptor(annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}

func run(o options) error {
	if o.output == "" || o.name == "" || len(o.files) == 0 {
		return errors.New("-o, -name and at least one -file are required")
	}
	repo, tag, ok := strings.Cut(path.Base(o.name), ":")
	if !ok || tag == "" || repo == "" {
		return fmt.Errorf("-name %q needs a tag", o.name)
	}
	layer, err := layerTar(o.files)
	if err != nil {
		return err
	}
	layerBlob := blob{"application/vnd.oci.image.layer.v1.tar", layer}

	exposed := map[string]struct{}{}
	for _, p := range o.ports {
		exposed[p] = struct{}{}
	}
	cfg := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint":   []string(o.entrypoint),
			"User":         o.user,
			"Env":          append([]string{"PATH=/"}, o.env...),
			"ExposedPorts": exposed,
			"WorkingDir":   "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerBlob.digest()}},
		"history": []map[string]any{{
			"created":    epoch.Format(time.RFC3339),
			"created_by": "ci/cluster/tools/cmd/mkimage " + strings.Join(os.Args[1:], " "),
		}},
	}
	cfgBlob, err := jsonBlob("application/vnd.oci.image.config.v1+json", cfg)
	if err != nil {
		return err
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgBlob.descriptor(nil),
		"layers":        []any{layerBlob.descriptor(nil)},
	}
	manifestBlob, err := jsonBlob("application/vnd.oci.image.manifest.v1+json", manifest)
	if err != nil {
		return err
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{manifestBlob.descriptor(map[string]string{
			"io.containerd.image.name":          o.name,
			"org.opencontainers.image.ref.name": tag,
		})},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	// Docker's archive format, so `docker load` takes the same file.
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   "blobs/sha256/" + strings.TrimPrefix(cfgBlob.digest(), "sha256:"),
		"RepoTags": []string{o.name},
		"Layers":   []string{"blobs/sha256/" + strings.TrimPrefix(layerBlob.digest(), "sha256:")},
	}})
	if err != nil {
		return err
	}

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexJSON},
		{"manifest.json", dockerManifest},
	}
	for _, b := range []blob{layerBlob, cfgBlob, manifestBlob} {
		entries = append(entries, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(b.digest(), "sha256:"), b.data})
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := writeFile(tw, e.name, 0o644, e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tmp := o.output + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, o.output)
}

// layerTar is the one layer: each file at its image path, parent directories
// included, in sorted order.
func layerTar(specs []string) ([]byte, error) {
	files := map[string]string{}
	for _, spec := range specs {
		dst, src, ok := strings.Cut(spec, "=")
		if !ok || !path.IsAbs(dst) || src == "" {
			return nil, fmt.Errorf("-file %q: want /IMAGE_PATH=HOST_PATH", spec)
		}
		files[strings.TrimPrefix(path.Clean(dst), "/")] = src
	}
	dirs := map[string]bool{}
	for dst := range files {
		for d := path.Dir(dst); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	names := make([]string, 0, len(files)+len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		if dirs[name] {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
			continue
		}
		info, err := os.Stat(files[name])
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(files[name])
		if err != nil {
			return nil, err
		}
		if err := writeFile(tw, name, int64(info.Mode().Perm()), data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	return blob{mediaType, data}, err
}
