package main

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"

	"github.com/imgcopy/imgcopy/inspect"
	"github.com/imgcopy/imgcopy/internal/credentials"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

func listTagsCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "list-tags",
		Usage:     "list the tags of a repository or OCI layout",
		ArgsUsage: "REF",
		Description: `Prints {"Repository": ..., "Tags": [...]} for REF's repository (docker://HOST/REPO, any tag
or digest in REF is ignored) or OCI layout (the ref.name of each index.json entry); works
with every transport whose references can list tags. For a layout, an archive or a dir:
store named by its path, "Images" lists every image with its digest and platforms.

Examples:
   imgcopy list-tags docker://docker.io/library/alpine
   imgcopy list-tags oci:examples/hello
   imgcopy list-tags docker-archive:/tmp/bundle.tar`,
		Flags:  imageFlags("", "image's"),
		Action: func(c *cli.Context) error { return listTagsCommand(c, e) },
	}
}

// tagList is the output of list-tags, with skopeo's field names; a store of many images (a
// layout or archive named by its path) adds every image with its platforms.
type tagList struct {
	Repository string
	Tags       []string
	Images     []inspect.StoredImage `json:",omitempty"`
}

func listTagsCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	ref, err := parseRef(e, c.Args().First())
	if err != nil {
		return err
	}
	lister, ok := ref.(types.TagLister)
	images, isStore := ref.(types.ImageLister)
	if !ok && !isStore {
		return usageErrorf("%s: the %s transport cannot list tags", types.ImageName(ref), ref.Transport().Name())
	}
	sys, err := systemContext(c, e, "")
	if err != nil {
		return err
	}
	var out tagList
	if isStore && ref.DockerReference() == nil {
		if out.Images, err = inspect.ListStore(c.Context, images, sys); err != nil {
			return err // it names what it was listing
		}
	}
	var tags []string
	if ok {
		tags, err = lister.ListTags(c.Context, sys)
	} else {
		tags, err = storedNames(c, images, sys, out.Images)
	}
	if err != nil {
		return err // the transports name what they were listing
	}
	repo := types.ImageName(ref)
	if named := ref.DockerReference(); named != nil && ref.Transport().Name() == "docker" {
		repo = named.Name()
	}
	if tags == nil {
		tags = []string{}
	}
	out.Repository, out.Tags = repo, tags
	return printJSON(e, out)
}

// storedNames returns the names of the images of a store without tags (a dir: store).
func storedNames(c *cli.Context, lister types.ImageLister, sys *types.SystemContext, images []inspect.StoredImage) ([]string, error) {
	if images == nil {
		var err error
		if images, err = inspect.ListStore(c.Context, lister, sys); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, img := range images {
		if img.Name != "" {
			names = append(names, img.Name)
		}
	}
	return names, nil
}

func deleteCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete an image from a registry or an OCI layout",
		ArgsUsage: "REF",
		Description: `Deletes REF: a registry manifest (by tag or digest; the registry must allow deletes) or a
name in an OCI layout, whose blobs no other entry uses are then removed.

Examples:
   imgcopy delete docker://127.0.0.1:5000/app@sha256:0123...
   imgcopy delete oci:/tmp/layout:old`,
		Flags:  imageFlags("", "image's"),
		Action: func(c *cli.Context) error { return deleteCommand(c, e) },
	}
}

func deleteCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	ref, err := parseRef(e, c.Args().First())
	if err != nil {
		return err
	}
	deleter, ok := ref.(types.ImageDeleter)
	if !ok {
		return usageErrorf("%s: the %s transport cannot delete images", types.ImageName(ref), ref.Transport().Name())
	}
	sys, err := systemContext(c, e, "")
	if err != nil {
		return err
	}
	return deleter.DeleteImage(c.Context, sys) // its errors name the image already
}

func manifestDigestCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "manifest-digest",
		Usage:     "print the digest of a manifest file",
		ArgsUsage: "FILE",
		Description: `Prints the digest of the manifest in FILE, as a registry computes it (for a signed schema1
manifest: over the payload without its signatures).

Examples:
   imgcopy manifest-digest /tmp/hello/manifest.json`,
		Action: func(c *cli.Context) error { return manifestDigestCommand(c, e) },
	}
}

func manifestDigestCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "FILE"); err != nil {
		return err
	}
	f, err := os.Open(c.Args().First())
	if err != nil {
		if _, perr := transports().ParseImageName(c.Args().First()); errors.Is(err, fs.ErrNotExist) && perr == nil {
			// manifest-digest oci-archive:x.tar: a reference where skopeo's command takes a file.
			return types.UsageError{Err: errors.Errorf("%v: manifest-digest reads a manifest file, as skopeo's does; for the digest of the image %s run: imgcopy inspect --format '{{.Digest}}' %s",
				err, c.Args().First(), c.Args().First())}
		}
		return err
	}
	defer f.Close()
	b, err := iolimits.ReadAtMost(f, iolimits.MaxManifestBodySize)
	if err != nil {
		return errors.Wrapf(err, "reading %s", c.Args().First())
	}
	d, err := manifest.Digest(b)
	if err != nil {
		return errors.Wrapf(err, "computing the digest of %s", c.Args().First())
	}
	printf(e.stdout, "%s\n", d)
	return nil
}

func loginCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "store credentials for a registry",
		ArgsUsage: "REGISTRY",
		Description: `Stores credentials for REGISTRY (HOST[:PORT]) in the containers auth.json format: in
--authfile, else $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json, else
/run/containers/UID/auth.json as skopeo (where it can be made), else
~/.config/containers/auth.json. Missing user name or password are asked on the terminal.
As with skopeo, the credentials are first checked against the registry (GET /v2/ with them);
refused credentials are not stored.

Examples:
   imgcopy login --username alice registry.example.com
   echo "$TOKEN" | imgcopy login --username alice --password-stdin 127.0.0.1:5000
   imgcopy login --tls-verify=false --username alice 10.0.0.5:5000`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user `NAME`"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "`PASSWORD` (visible in the process list; prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
			&cli.StringFlag{Name: "authfile", Usage: "write to auth file `PATH`"},
			&cli.StringFlag{Name: "cert-dir", Usage: "use certificates (*.crt, *.cert, *.key) in `DIR` for the registry"},
			&cli.BoolFlag{Name: "tls-verify", Value: true, Usage: "require HTTPS and verify certificates for the registry"},
			&cli.BoolFlag{Name: "get-login", Usage: "print the user name stored for REGISTRY (in the auth files credentials are read from) and store nothing"},
		},
		Action: func(c *cli.Context) error { return loginCommand(c, e) },
	}
}

func loginCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REGISTRY"); err != nil {
		return err
	}
	registry, err := registryArg(c.Args().First()) // before asking for a password
	if err != nil {
		return err
	}
	if c.Bool("get-login") {
		return getLogin(c, e, registry)
	}
	auth := types.DockerAuthConfig{Username: c.String("username"), Password: c.String("password")}
	if c.Bool("password-stdin") {
		if c.IsSet("password") {
			return usageErrorf("--password and --password-stdin cannot be used together")
		}
		if auth.Username == "" {
			return usageErrorf("--password-stdin needs --username")
		}
		p, err := readLine(bufio.NewReader(e.stdin))
		if err != nil {
			return errors.Wrap(err, "reading the password from stdin")
		}
		auth.Password = p
	}
	if auth.Username == "" {
		if !e.isTerminal(e.stdin) {
			return usageErrorf("--username is required when stdin is not a terminal")
		}
		printf(e.stderr, "Username: ")
		u, err := readLine(bufio.NewReader(e.stdin))
		if err != nil {
			return errors.Wrap(err, "reading the user name")
		}
		auth.Username = u
	}
	if auth.Password == "" {
		p, err := readPassword(e, "Password: ")
		if err != nil {
			return usageError{errors.Wrap(err, "no password given (use --password-stdin)")}
		}
		auth.Password = p
	}
	check := &types.SystemContext{DockerAuthConfig: &auth, CertDir: c.String("cert-dir")}
	if c.IsSet("tls-verify") {
		check.InsecureSkipTLSVerify = types.NewOptionalBool(!c.Bool("tls-verify"))
	}
	if err := e.checkAuth(c.Context, check, registry); err != nil {
		return errors.Wrapf(err, "logging in to %s (nothing stored)", registry)
	}
	path, err := credentials.Login(&types.SystemContext{AuthFilePath: c.String("authfile")}, registry, auth)
	if err != nil {
		return err
	}
	printf(e.stdout, "Login Succeeded! (credentials stored in %s)\n", path)
	return nil
}

// getLogin prints the user name stored for the registry, as skopeo login --get-login.
func getLogin(c *cli.Context, e *env, registry string) error {
	auth, err := credentials.Lookup(c.Context, &types.SystemContext{AuthFilePath: c.String("authfile")}, registry, "")
	if err != nil {
		return err
	}
	if auth.Username == "" {
		return errors.Wrapf(types.ErrNotLoggedIn, "no user name stored for %s", registry)
	}
	printf(e.stdout, "%s\n", auth.Username)
	return nil
}

func logoutCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove stored credentials for a registry",
		ArgsUsage: "REGISTRY",
		Description: `Removes the credentials for REGISTRY from the auth file login writes; --all removes
those of every registry.

Examples:
   imgcopy logout registry.example.com
   imgcopy logout --authfile /tmp/auth.json 127.0.0.1:5000
   imgcopy logout --all`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "authfile", Usage: "edit auth file `PATH`"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove the credentials of every registry in the auth file"},
		},
		Action: func(c *cli.Context) error { return logoutCommand(c, e) },
	}
}

func logoutCommand(c *cli.Context, e *env) error {
	if c.Bool("all") {
		if err := checkArgs(c, 0, "no REGISTRY with --all"); err != nil {
			return err
		}
		path, err := credentials.LogoutAll(&types.SystemContext{AuthFilePath: c.String("authfile")})
		if err != nil {
			return err
		}
		printf(e.stdout, "Removed login credentials for all registries from %s\n", path)
		return nil
	}
	if err := checkArgs(c, 1, "REGISTRY"); err != nil {
		return err
	}
	registry, err := registryArg(c.Args().First())
	if err != nil {
		return err
	}
	path, err := credentials.Logout(&types.SystemContext{AuthFilePath: c.String("authfile")}, registry)
	if err != nil {
		return err
	}
	printf(e.stdout, "Removed login credentials for %s from %s\n", registry, path)
	return nil
}

// registryArg returns the REGISTRY argument of login and logout as HOST[:PORT]. A URL, as
// docker login takes it and skopeo login strips it (https://registry.example.com,
// https://index.docker.io/v1/), stands for its host; a URL with another path (a repository)
// is refused, as auth files here hold credentials per registry.
func registryArg(arg string) (string, error) {
	rest, ok := strings.CutPrefix(arg, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(arg, "http://"); !ok {
			return arg, nil
		}
	}
	host, path, _ := strings.Cut(rest, "/")
	switch strings.TrimSuffix(path, "/") {
	case "", "v1", "v2":
		return host, nil
	}
	return "", usageErrorf("%s: give the registry alone (HOST[:PORT], or its URL without a path), not a repository", arg)
}

func versionCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Description: `Prints the imgcopy version and the Go version it was built with.

Examples:
   imgcopy version`,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, "no arguments"); err != nil {
				return err
			}
			printVersion(e.stdout)
			return nil
		},
	}
}

// printVersion prints what both `imgcopy version` and `imgcopy --version` print.
func printVersion(w io.Writer) {
	printf(w, "imgcopy version %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion can be set with -ldflags "-X main.buildVersion=v1.2.3".
var buildVersion = ""

// version returns buildVersion, else the module version from the build info ("(devel)" for
// a build from a checkout).
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
