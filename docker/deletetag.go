package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.TagDeleter = reference{}

// DeleteTag implements types.TagDeleter. It asks the registry to delete the tag itself
// (distribution-spec v1.1 allows DELETE of a manifest by tag). A registry that refuses that
// (405 or UNSUPPORTED; CNCF distribution 2.x answers 400 DIGEST_INVALID, since it takes the
// tag for a digest) gets the work-around regclient uses: the tag is first pointed at a
// manifest of its own, unique to this deletion, which is then deleted by digest, so that no
// other tag of the image is touched. Should the registry refuse that delete too (deletes
// disabled, e.g. distribution without storage.delete.enabled), the tag is put back on the
// manifest it had, so a refused prune never leaves the tag on the throw-away manifest.
func (r reference) DeleteTag(ctx context.Context, sys *types.SystemContext) error {
	tag := r.tag()
	if tag == "" || r.digest() != "" {
		return errors.Wrapf(types.ErrUsage, "deleting a tag: %s does not name a tag alone", types.ImageName(r))
	}
	c, err := r.newClient(sys)
	if err != nil {
		return err
	}
	scopes := []scope{{repo: r.repo(), actions: "*"}}
	err = c.deleteManifest(ctx, tag, scopes)
	if !tagDeleteRefused(err) {
		return errors.Wrapf(err, "deleting tag %s", types.ImageName(r))
	}
	logrus.WithFields(logrus.Fields{"repository": c.name(), "tag": tag}).Debug("registry cannot delete a tag; pointing it at a throw-away manifest to delete that")
	body, mimeType, err := c.getManifest(ctx, tag, scopes)
	if err != nil {
		return errors.Wrapf(err, "deleting tag %s", types.ImageName(r))
	}
	d, err := r.pushPlaceholder(ctx, sys, tag)
	if err != nil {
		return errors.Wrapf(err, "deleting tag %s", types.ImageName(r))
	}
	if err := c.deleteManifest(ctx, d.String(), scopes); err != nil {
		if _, rerr := c.putManifest(ctx, tag, body, mimeType, nil, scopes); rerr != nil {
			return errors.Wrapf(err, "deleting tag %s (putting the tag back on its manifest failed too, it names throw-away manifest %s: %v)", types.ImageName(r), d, rerr)
		}
		return errors.Wrapf(err, "deleting tag %s (the registry refuses deletes; the tag is unchanged)", types.ImageName(r))
	}
	return nil
}

// deleteManifest sends DELETE for a manifest by tag or digest.
func (c *client) deleteManifest(ctx context.Context, ref string, scopes []scope) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: manifestPath(c.repo, ref), scopes: scopes})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return c.statusError(resp, kindManifest)
	}
	drain(resp)
	return nil
}

// tagDeleteRefused reports whether err is a registry refusing to delete a manifest by tag:
// 405 or UNSUPPORTED, or distribution 2.x's 400 DIGEST_INVALID (it reads the tag as a digest).
func tagDeleteRefused(err error) bool {
	re, ok := asRegistryError(err)
	return ok && (re.status == http.StatusMethodNotAllowed || re.hasCode(codeUnsupported) ||
		(re.status == http.StatusBadRequest && re.hasCode(codeDigestInvalid)))
}

// pushPlaceholder tags a new, unique, layerless schema2 image as tag and returns its digest.
func (r reference) pushPlaceholder(ctx context.Context, sys *types.SystemContext, tag string) (digest.Digest, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"io.imgcopy.deleted-tag": tag, "io.imgcopy.nonce": hex.EncodeToString(nonce)}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	if err != nil {
		return "", err
	}
	dest, err := newImageDestination(ctx, sys, r)
	if err != nil {
		return "", err
	}
	defer dest.Close()
	info := types.BlobInfo{Digest: digest.FromBytes(config), Size: int64(len(config)), MediaType: manifest.DockerV2Schema2ConfigMediaType}
	if _, err := dest.PutBlob(ctx, bytes.NewReader(config), info, types.PutBlobOptions{IsConfig: true, LayerIndex: -1}); err != nil {
		return "", err
	}
	body, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": manifest.DockerV2Schema2MediaType,
		"config": map[string]any{"mediaType": info.MediaType, "digest": info.Digest, "size": info.Size},
		"layers": []any{},
	})
	if err != nil {
		return "", err
	}
	d := dest.(*destination)
	if _, err := d.c.putManifest(ctx, tag, body, manifest.DockerV2Schema2MediaType, nil, d.scopes); err != nil {
		return "", err
	}
	return digest.FromBytes(body), nil
}
