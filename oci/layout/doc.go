// Package layout implements the "oci:" transport: images in an OCI image layout directory
// (oci-layout, index.json, blobs/<alg>/<hex>), several per layout, each named by the
// org.opencontainers.image.ref.name annotation of its index.json entry.
//
// Manifests are stored byte for byte in whatever type they come (Docker schema2 and manifest
// lists included), so digests survive a round trip. Writers stage blobs in a private
// directory inside the layout and publish them, together with the new index.json, under an
// exclusive lock on index.json.lock, so concurrent writers of different images all succeed.
//
// # Getting started
//
// Parse "oci:PATH[:NAME]" or "oci:PATH@DIGEST" with a transport list
// (transports/alltransports), or call NewReference(PATH, NAME) or NewDigestReference. NAME
// is a bare tag ("latest") or a full reference; without one, the layout must hold exactly
// one image to read, and a written image has no name. oci:PATH alone lists every image
// (types.ImageLister). References also implement types.TagLister (the ref.names),
// types.ManifestDigester and types.ImageDeleter (which also removes the blobs no other image
// uses); destinations implement types.ManifestChecker, types.ReferrersLister and
// types.RelatedDestination, sources types.ReferrersLister and types.RelatedSource. The
// transport is a types.StoreTransport whose images are named by ref.name.
//
// # Stability
//
// Transport, NewReference, NewDigestReference, ErrInvalidLayout (an alias of
// types.ErrInvalidLayout), LayoutFile, IndexFile and LockFile, the reference syntax
// (skopeo's) and the layout written (the OCI image-layout specification) are stable.
// Everything else exported here is a piece of the format that the oci-archive transport
// reuses to read a layout inside a tar (NewImageSourceFS, ListImagesFS, Walk, ...) and to
// write one (UpdateIndex, UpdateRelated, ...), or follows a draft of the specification
// (AnnotationReferrerSubject): it is not covered by the promise, and may change or move
// under internal/.
package layout
