package manifest

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sync"
	"time"

	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// Schema1FSLayer is one entry of a schema1 manifest's fsLayers (newest first).
type Schema1FSLayer struct {
	BlobSum digest.Digest `json:"blobSum"`
}

// Schema1History is one entry of a schema1 manifest's history: a v1 image JSON, as a string.
type Schema1History struct {
	V1Compatibility string `json:"v1Compatibility"`
}

// Schema1Signature is one libtrust JWS signature of a signed schema1 manifest.
type Schema1Signature struct {
	Header    json.RawMessage `json:"header"`
	Signature string          `json:"signature"`
	Protected string          `json:"protected"`
}

// Schema1 is a Docker schema1 manifest, signed or not
// (https://distribution.github.io/distribution/spec/deprecated-schema-v1/). fsLayers and
// history list the newest layer first.
type Schema1 struct {
	SchemaVersion int                `json:"schemaVersion"`
	Name          string             `json:"name"`
	Tag           string             `json:"tag"`
	Architecture  string             `json:"architecture"`
	FSLayers      []Schema1FSLayer   `json:"fsLayers"`
	History       []Schema1History   `json:"history"`
	Signatures    []Schema1Signature `json:"signatures,omitempty"`

	raw []byte
}

var _ Manifest = (*Schema1)(nil)

func (m *Schema1) rawBytes() []byte  { return m.raw }
func (m *Schema1) setRaw(raw []byte) { m.raw = raw }

// schema1V1Compat is the part of a v1Compatibility entry that this package uses.
type schema1V1Compat struct {
	ID              string    `json:"id"`
	Parent          string    `json:"parent,omitempty"`
	Comment         string    `json:"comment,omitempty"`
	Created         time.Time `json:"created"`
	Author          string    `json:"author,omitempty"`
	ThrowAway       bool      `json:"throwaway,omitempty"`
	ContainerConfig struct {
		Cmd []string `json:"Cmd"`
	} `json:"container_config,omitempty"`
}

// schema1Entry is one layer of a schema1 manifest after removing repeated entries.
type schema1Entry struct {
	blobSum digest.Digest
	compat  schema1V1Compat
	index   int // position in FSLayers/History
}

var v1IDRegexp = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })

// schema1FromBlob parses and validates a schema1 manifest. For a signed one the content is
// read from the signed payload, which must agree with the full document.
func schema1FromBlob(b []byte) (*Schema1, error) {
	if err := checkUnambiguous(b, DockerV2Schema1MediaType, fieldFSLayers|fieldHistory); err != nil {
		return nil, err
	}
	m := &Schema1{}
	if err := unmarshalStrict(b, m, DockerV2Schema1MediaType); err != nil {
		return nil, err
	}
	if GuessMIMEType(b) == DockerV2Schema1SignedMediaType {
		if err := checkSignedPayload(b, m); err != nil {
			return nil, err
		}
	}
	if m.SchemaVersion != 1 {
		return nil, errors.Wrapf(ErrInvalidManifest, "schema1 manifest with schemaVersion %d", m.SchemaVersion)
	}
	if _, err := m.entries(); err != nil {
		return nil, err
	}
	m.raw = b
	return m, nil
}

// checkSignedPayload verifies the signatures over the signed payload and makes sure the
// payload says the same as the whole document, so that the digest (over the payload) pins
// what we use. A failure matches types.ErrSignatureInvalid (and ErrInvalidManifest).
func checkSignedPayload(b []byte, m *Schema1) error {
	payload, err := schema1Payload(b)
	if err != nil {
		return err
	}
	if err := verifySchema1Signatures(b, payload); err != nil {
		return err
	}
	var p Schema1
	if err := unmarshalStrict(payload, &p, "signed schema1 payload"); err != nil {
		return err
	}
	p.Signatures = m.Signatures
	if !reflect.DeepEqual(&p, m) {
		return signatureErrorf("the signed payload differs from the manifest")
	}
	return nil
}

// entries parses the history and returns the layers, newest first, without the repeated
// entries some old Docker versions wrote; it checks the parent chain like Docker does.
func (m *Schema1) entries() ([]schema1Entry, error) {
	if len(m.FSLayers) != len(m.History) {
		return nil, errors.Wrapf(ErrInvalidManifest, "schema1 manifest has %d fsLayers but %d history entries",
			len(m.FSLayers), len(m.History))
	}
	if len(m.FSLayers) == 0 {
		return nil, errors.Wrap(ErrInvalidManifest, "schema1 manifest has no layers")
	}
	all := make([]schema1Entry, len(m.History))
	seen := map[string]bool{}
	for i, h := range m.History {
		e, err := parseSchema1Entry(i, m.FSLayers[i].BlobSum, h)
		if err != nil {
			return nil, err
		}
		if seen[e.compat.ID] && (i == 0 || all[i-1].compat.ID != e.compat.ID) {
			return nil, errors.Wrapf(ErrInvalidManifest, "schema1 layer ID %s appears more than once", e.compat.ID)
		}
		seen[e.compat.ID] = true
		all[i] = e
	}
	return dedupSchema1(all)
}

// parseSchema1Entry parses and validates history entry i.
func parseSchema1Entry(i int, blobSum digest.Digest, h Schema1History) (schema1Entry, error) {
	e := schema1Entry{blobSum: blobSum, index: i}
	if err := blobSum.Validate(); err != nil {
		return e, errors.Wrapf(ErrInvalidManifest, "schema1 fsLayers[%d] blobSum %q: %v", i, blobSum, err)
	}
	if err := json.Unmarshal([]byte(h.V1Compatibility), &e.compat); err != nil {
		return e, errors.Wrapf(ErrInvalidManifest, "parsing schema1 history[%d]: %v", i, err)
	}
	if !v1IDRegexp().MatchString(e.compat.ID) {
		return e, errors.Wrapf(ErrInvalidManifest, "schema1 history[%d] has invalid ID %q", i, e.compat.ID)
	}
	return e, nil
}

// dedupSchema1 drops an entry repeated right after itself and checks each parent link.
func dedupSchema1(all []schema1Entry) ([]schema1Entry, error) {
	if last := all[len(all)-1]; last.compat.Parent != "" {
		return nil, errors.Wrapf(ErrInvalidManifest, "schema1 base layer %s has parent %s", last.compat.ID, last.compat.Parent)
	}
	out := make([]schema1Entry, 0, len(all))
	for i, e := range all {
		if i+1 < len(all) {
			next := all[i+1].compat.ID
			if e.compat.ID == next {
				continue
			}
			if e.compat.Parent != next {
				return nil, errors.Wrapf(ErrInvalidManifest, "schema1 layer %s has parent %q, expected %s",
					e.compat.ID, e.compat.Parent, next)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// MIMEType implements Manifest: the signed type when the manifest carries signatures.
func (m *Schema1) MIMEType() string {
	if len(m.Signatures) > 0 {
		return DockerV2Schema1SignedMediaType
	}
	return DockerV2Schema1MediaType
}

// ConfigInfo implements Manifest; schema1 has no config blob, so it is the zero BlobInfo.
func (m *Schema1) ConfigInfo() types.BlobInfo { return types.BlobInfo{} }

// LayerInfos implements Manifest, in application order (base first). Sizes are unknown (-1)
// and the media type is DockerV2Schema2LayerMediaType, because schema1 layers are gzip
// tarballs. A manifest whose history does not parse lists every fsLayer as non-empty.
func (m *Schema1) LayerInfos() []LayerInfo {
	entries, err := m.entries()
	if err != nil {
		entries = make([]schema1Entry, len(m.FSLayers))
		for i, l := range m.FSLayers {
			entries[i] = schema1Entry{blobSum: l.BlobSum, index: i}
		}
	}
	out := make([]LayerInfo, 0, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, LayerInfo{
			BlobInfo:   types.BlobInfo{Digest: entries[i].blobSum, Size: -1, MediaType: DockerV2Schema2LayerMediaType},
			EmptyLayer: entries[i].compat.ThrowAway,
		})
	}
	return out
}

// Serialize implements Manifest. A changed or hand-built schema1 manifest is written
// unsigned (indented, as Docker did), since its old signatures no longer apply.
func (m *Schema1) Serialize() ([]byte, error) {
	if b := serializeOriginal(m); b != nil {
		return b, nil
	}
	c := *m
	c.Signatures = nil
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 1
	}
	return json.MarshalIndent(&c, "", "   ")
}
