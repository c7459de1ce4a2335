package manifest

import (
	"encoding/json"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// schema1ConfigHistory is one history entry of a synthesized image config.
type schema1ConfigHistory struct {
	Created    time.Time `json:"created"`
	Author     string    `json:"author,omitempty"`
	CreatedBy  string    `json:"created_by,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
}

// schema1ConfigRootFS is the rootfs of a synthesized image config.
type schema1ConfigRootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// v1-only fields of the newest v1Compatibility entry that an image config does not have.
var schema1DroppedFields = []string{"id", "parent", "parent_id", "layer_id", "throwaway", "Size"}

// Schema1Config synthesizes a Docker image config for a schema1 manifest given the diff IDs
// of its non-empty layers (application order): the newest v1Compatibility entry without its
// v1-only fields, plus rootfs and a history built from every entry. Missing architecture and
// os are taken from the manifest and "linux".
func Schema1Config(m Manifest, diffIDs []digest.Digest) ([]byte, error) {
	s1, ok := m.(*Schema1)
	if !ok {
		return nil, errors.Wrapf(ErrUnsupportedMIMEType, "synthesizing a config for a %s manifest", m.MIMEType())
	}
	entries, err := s1.entries()
	if err != nil {
		return nil, err
	}
	history, nonEmpty := schema1History(entries)
	if len(diffIDs) != nonEmpty {
		return nil, errors.Errorf("synthesizing schema1 config: %d diff IDs for %d non-empty layers", len(diffIDs), nonEmpty)
	}
	for i, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return nil, errors.Wrapf(err, "synthesizing schema1 config: diff ID %d", i)
		}
	}
	var config map[string]json.RawMessage
	if err := unmarshalStrict([]byte(s1.History[entries[0].index].V1Compatibility), &config, "schema1 history[0]"); err != nil {
		return nil, err
	}
	for _, f := range schema1DroppedFields {
		delete(config, f)
	}
	setDefaultJSONString(config, "architecture", s1.Architecture)
	setDefaultJSONString(config, "os", "linux")
	if config["rootfs"], err = json.Marshal(schema1ConfigRootFS{Type: "layers", DiffIDs: nonNilDigests(diffIDs)}); err != nil {
		return nil, errors.Wrap(err, "synthesizing schema1 config rootfs")
	}
	if config["history"], err = json.Marshal(history); err != nil {
		return nil, errors.Wrap(err, "synthesizing schema1 config history")
	}
	return json.Marshal(config)
}

// schema1History converts the entries (newest first) into config history (oldest first) and
// counts the non-empty layers.
func schema1History(entries []schema1Entry) ([]schema1ConfigHistory, int) {
	out := make([]schema1ConfigHistory, 0, len(entries))
	nonEmpty := 0
	for i := len(entries) - 1; i >= 0; i-- {
		c := entries[i].compat
		out = append(out, schema1ConfigHistory{
			Created: c.Created, Author: c.Author, Comment: c.Comment,
			CreatedBy: strings.Join(c.ContainerConfig.Cmd, " "), EmptyLayer: c.ThrowAway,
		})
		if !c.ThrowAway {
			nonEmpty++
		}
	}
	return out, nonEmpty
}

// setDefaultJSONString sets key to value when it is missing or empty and value is not empty.
func setDefaultJSONString(m map[string]json.RawMessage, key, value string) {
	var cur string
	if raw, ok := m[key]; ok && json.Unmarshal(raw, &cur) == nil && cur != "" {
		return
	}
	if b, err := json.Marshal(value); err == nil && value != "" {
		m[key] = b
	}
}

// nonNilDigests returns d, or an empty slice for nil, so that JSON says [] and not null.
func nonNilDigests(d []digest.Digest) []digest.Digest {
	if d == nil {
		return []digest.Digest{}
	}
	return d
}
