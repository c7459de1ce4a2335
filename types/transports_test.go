package types

import (
	"context"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/pkg/errors"
)

type fakeTransport struct{ name string }

var _ ImageTransport = fakeTransport{}

func (f fakeTransport) Name() string { return f.name }
func (f fakeTransport) ParseReference(ref string) (ImageReference, error) {
	if ref == "" {
		return nil, errors.New("empty reference")
	}
	return fakeRef{t: f, s: ref}, nil
}

type fakeRef struct {
	t fakeTransport
	s string
}

var _ ImageReference = fakeRef{}

func (r fakeRef) Transport() ImageTransport        { return r.t }
func (r fakeRef) StringWithinTransport() string    { return r.s }
func (r fakeRef) DockerReference() reference.Named { return nil }
func (r fakeRef) NewImageSource(context.Context, *SystemContext) (ImageSource, error) {
	return nil, errors.New("not implemented")
}
func (r fakeRef) NewImageDestination(context.Context, *SystemContext) (ImageDestination, error) {
	return nil, errors.New("not implemented")
}

func TestNewTransportListRejectsUnusableTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		list []ImageTransport
	}{
		{"nil", []ImageTransport{fakeTransport{"dir"}, nil}},
		{"empty name", []ImageTransport{fakeTransport{""}}},
		{"colon in name", []ImageTransport{fakeTransport{"my:t"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewTransportList(tc.list...)
			if Classify(err) != ClassUsage {
				t.Fatalf("NewTransportList: %v (class %v), want a usage error", err, Classify(err))
			}
		})
	}
}

func TestNewTransportListRejectsDuplicates(t *testing.T) {
	_, err := NewTransportList(fakeTransport{"dir"}, fakeTransport{"oci"}, fakeTransport{"dir"})
	if err == nil || !strings.Contains(err.Error(), `two transports are named "dir"`) {
		t.Fatalf("expected duplicate-name error, got %v", err)
	}
}

func TestParseImageName(t *testing.T) {
	l, err := NewTransportList(fakeTransport{"oci"}, fakeTransport{"docker"}, fakeTransport{"dir"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, in, want string
		wantErr        error
		wantMsg        string
	}{
		{name: "docker", in: "docker://busybox:latest", want: "docker://busybox:latest"},
		{name: "oci with colon in rest", in: "oci:/tmp/x:v1", want: "oci:/tmp/x:v1"},
		{name: "unknown transport lists known ones", in: "foo:bar", wantErr: ErrUnknownTransport, wantMsg: "known transports: dir, docker, oci"},
		{name: "no colon", in: "busybox", wantErr: ErrUnknownTransport, wantMsg: "expected TRANSPORT:REFERENCE"},
		{name: "transport parse error is wrapped", in: "dir:", wantMsg: `invalid image name "dir:": empty reference`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := l.ParseImageName(tc.in)
			if tc.wantMsg != "" || tc.wantErr != nil {
				if err == nil {
					t.Fatalf("expected error, got %v", ImageName(ref))
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tc.wantMsg)
				}
				if c := Classify(err); c != ClassUsage {
					t.Errorf("error %q is in class %v, want usage", err, c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ImageName(ref); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	mm := errors.Wrap(DigestMismatchError{Expected: "sha256:aa", Actual: "sha256:bb", ExpectedSize: 3, ActualSize: 4}, "copying blob sha256:aa")
	if !errors.Is(mm, ErrDigestMismatch) {
		t.Errorf("DigestMismatchError does not match ErrDigestMismatch")
	}
	if want := "copying blob sha256:aa: digest mismatch: expected sha256:aa (3 bytes), got sha256:bb (4 bytes)"; mm.Error() != want {
		t.Errorf("got %q, want %q", mm.Error(), want)
	}
	rej := errors.Wrap(ManifestTypeRejectedError{MIMEType: "x", Err: ErrDenied}, "writing manifest")
	var mtr ManifestTypeRejectedError
	if !errors.As(rej, &mtr) || mtr.MIMEType != "x" || !errors.Is(rej, ErrDenied) {
		t.Errorf("ManifestTypeRejectedError does not unwrap: %v", rej)
	}
}
