// Package dir implements the "dir:" transport: one image per directory in the layout skopeo
// writes — a version file, manifest.json, one file per blob named by the hex of its digest and
// <hex>.manifest.json for the instances of a multi-platform image. Signatures are ignored.
// A directory of such directories, one per image named like it (STORE/team/app:1, as skopeo
// sync writes them), is a store of many images (types.StoreTransport, types.ImageLister).
//
// # Getting started
//
// Name an image "dir:PATH" and parse it with a transport list (transports/alltransports), or
// call NewReference(PATH). Any manifest type is stored unchanged, so a copy into a directory
// never converts. Writing stages nothing outside the directory: each blob goes to a temporary
// file that is checked and renamed, and manifest.json, written last by Commit, makes the
// image visible; files of a replaced image are removed only after that. A non-empty
// directory that holds no image is never overwritten (ErrNotImageDir).
//
// References also implement types.ImageLister and types.ManifestDigester; the transport is a
// types.StoreTransport.
//
// # Stability
//
// Transport, NewReference, ErrNotImageDir (an alias of types.ErrNotImageDir), the reference
// syntax and the directory format (skopeo's) are stable.
package dir
