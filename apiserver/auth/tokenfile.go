package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TokenEntry is one line of a token file.
type TokenEntry struct {
	Token string
	User  UserInfo
}

// TokenFile is a static bearer-token authenticator backed by a CSV file in
// the Kubernetes --token-auth-file format:
//
//	token,user,uid,"group1,group2"
//
// The fourth column is optional. Tokens are looked up by their SHA-256, so
// the comparison never leaks through timing how much of a token matched.
type TokenFile struct {
	path string

	mu      sync.RWMutex
	entries []TokenEntry
	byHash  map[[sha256.Size]byte]*UserInfo
	// sum is the SHA-256 of the file content entries came from (or were
	// written as), so a reload can tell whether the file changed.
	sum [sha256.Size]byte
}

var _ Authenticator = (*TokenFile)(nil)

// EnsureTokens loads the token file at path, creating it (mode 0600, dir
// 0700) on first start, and adds a random token for every user in users
// that has none yet, with DefaultGroups. Existing lines are never changed,
// so tokens already handed out stay valid across restarts.
func EnsureTokens(path string, users []string) (*TokenFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: create dir for token file %s: %w", path, err)
	}
	var f *TokenFile
	err := withFileLock(path, func() error {
		var err error
		f, err = LoadTokenFile(path)
		if errors.Is(err, os.ErrNotExist) {
			f, err = &TokenFile{path: path, byHash: map[[sha256.Size]byte]*UserInfo{}}, nil
		}
		if err != nil {
			return err
		}
		added := false
		for _, u := range users {
			if _, ok := f.Token(u); ok {
				continue
			}
			if _, err := f.addLocked(u, DefaultGroups(u)); err != nil {
				return err
			}
			added = true
		}
		if _, statErr := os.Stat(path); added || statErr != nil {
			return f.save()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	warnIfReadable(path)
	return f, nil
}

// AddUser adds user with groups to the token file at path (creating it if
// needed) and returns its token. If the user already has a token, that
// token is returned and the file is left unchanged. A running API server
// sees the new user within a poll of its WatchFile.
func AddUser(path, user string, groups []string) (string, error) {
	return addToken(path, user, groups, true)
}

// CreateToken appends a new random token for user with groups to the
// token file at path (creating the file if needed) and returns it. Unlike
// AddUser it always mints one, so a user such as system:node-join can hold
// several tokens at once and one can be retired with DeleteToken while
// the others stay valid.
func CreateToken(path, user string, groups []string) (string, error) {
	return addToken(path, user, groups, false)
}

// addToken mints a token for user under the file lock, or, with reuse,
// returns the one the user has already.
func addToken(path, user string, groups []string, reuse bool) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("auth: create dir for token file %s: %w", path, err)
	}
	var token string
	err := withFileLock(path, func() error {
		f, err := LoadTokenFile(path)
		if errors.Is(err, os.ErrNotExist) {
			f, err = &TokenFile{path: path, byHash: map[[sha256.Size]byte]*UserInfo{}}, nil
		}
		if err != nil {
			return err
		}
		if t, ok := f.Token(user); ok && reuse {
			token = t
			return nil
		}
		if token, err = f.addLocked(user, groups); err != nil {
			return err
		}
		return f.save()
	})
	return token, err
}

// MinTokenPrefix is the shortest prefix DeleteToken accepts instead of a
// whole token; MaskToken shows that many characters.
const MinTokenPrefix = 8

// DeleteToken removes from the token file at path the one line whose
// token is tokenOrPrefix, or starts with it (at least MinTokenPrefix
// characters), and returns it. No match and several matches are errors,
// and the file is then left alone; so is an error from check (if not nil),
// which sees the matched line before it goes.
func DeleteToken(path, tokenOrPrefix string, check func(TokenEntry) error) (TokenEntry, error) {
	var removed TokenEntry
	err := withFileLock(path, func() error {
		f, err := LoadTokenFile(path)
		if err != nil {
			return err
		}
		entries := f.Entries()
		match := -1
		for i, e := range entries {
			if e.Token == tokenOrPrefix {
				match = i
				break
			}
		}
		if match < 0 {
			if len(tokenOrPrefix) < MinTokenPrefix {
				return fmt.Errorf("auth: token file %s: no token %q (give the whole token or at least %d characters of it)",
					path, tokenOrPrefix, MinTokenPrefix)
			}
			n := 0
			for i, e := range entries {
				if strings.HasPrefix(e.Token, tokenOrPrefix) {
					match, n = i, n+1
				}
			}
			switch n {
			case 0:
				return fmt.Errorf("auth: token file %s: no token starts with %q", path, tokenOrPrefix)
			case 1:
			default:
				return fmt.Errorf("auth: token file %s: %d tokens start with %q; give more of it", path, n, tokenOrPrefix)
			}
		}
		if check != nil {
			if err := check(entries[match]); err != nil {
				return err
			}
		}
		removed = entries[match]
		f.setEntries(slices.Delete(entries, match, match+1))
		return f.save()
	})
	return removed, err
}

// MaskToken shows the start of token (MinTokenPrefix characters, less for
// a short hand-made token) and hides the rest, for listings.
func MaskToken(token string) string {
	n := MinTokenPrefix
	if len(token) < 2*n {
		n = len(token) / 2
	}
	return token[:n] + "…"
}

// LoadTokenFile parses the token file at path. A missing file returns an
// error wrapping os.ErrNotExist.
func LoadTokenFile(path string) (*TokenFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read token file %s: %w", path, err)
	}
	entries, err := parseTokens(path, data)
	if err != nil {
		return nil, err
	}
	f := &TokenFile{path: path}
	f.setEntries(entries)
	f.sum = sha256.Sum256(data)
	return f, nil
}

// Path returns the file the tokens were read from.
func (f *TokenFile) Path() string { return f.path }

// Reload re-reads the file, e.g. after CreateToken from another process.
// On error the previous tokens stay in effect. WatchFile calls it for a
// running API server.
func (f *TokenFile) Reload() error {
	_, err := f.reload()
	return err
}

// reload re-reads the file and applies it if its content differs from
// what the tokens came from; it reports whether it did. It does not take
// the writers' file lock: writers rename a complete file into place, so a
// read sees the old or the new file, and a writer stopped while holding
// the lock (a suspended `minik8s token`) cannot stall the server's
// reloads. The comparison and the swap happen under one lock, so two
// reloads racing cannot leave the older content in effect.
func (f *TokenFile) reload() (bool, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("auth: reload token file %s: %w", f.path, err)
	}
	sum := sha256.Sum256(data)
	f.mu.RLock()
	same := sum == f.sum
	f.mu.RUnlock()
	if same {
		return false, nil
	}
	entries, err := parseTokens(f.path, data)
	if err != nil {
		return false, err
	}
	byHash := indexTokens(entries)
	f.mu.Lock()
	defer f.mu.Unlock()
	if sum == f.sum {
		return false, nil // another reload applied it meanwhile
	}
	f.entries, f.byHash, f.sum = entries, byHash, sum
	return true, nil
}

// WatchFile re-reads the token file every interval until ctx ends and
// applies it when its content changed, so tokens added or removed by
// `minik8s token` (or by hand) take effect without a restart. A file that
// cannot be read or parsed leaves the previous tokens in effect; the error
// is logged once, not at every poll. changed, if not nil, runs after each
// reload that changed the tokens.
//
// Polling, not SIGHUP: the writer is usually `minik8s token`, another
// process that would have to find the server's pid (and `minik8s server`
// runs the controllers and the kubelet in the same process); a signal is
// also process-wide, while tests run several API servers in one process;
// and an operator editing tokens.csv by hand needs no extra step. The poll
// compares content, not mtime and size: deleting one token and creating
// another leaves the size unchanged, mtime may have one-second resolution
// or be preserved by cp -p, and the file is a few hundred bytes, so
// reading it every few seconds costs nothing.
func (f *TokenFile) WatchFile(ctx context.Context, interval time.Duration, log *slog.Logger, changed func()) {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := f.reload()
		if err != nil {
			if err.Error() != lastErr {
				log.Error("token file not reloaded; the previous tokens stay in effect",
					"component", "apiserver", "file", f.path, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		if lastErr != "" && !ok {
			// Fixed back to the content in effect.
			log.Info("token file readable again", "component", "apiserver", "file", f.path)
		}
		lastErr = ""
		if ok {
			log.Info("token file reloaded", "component", "apiserver", "file", f.path, "tokens", len(f.Entries()))
			warnIfReadable(f.path)
			if changed != nil {
				changed()
			}
		}
	}
}

// Entries returns a copy of all lines, in file order.
func (f *TokenFile) Entries() []TokenEntry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]TokenEntry, len(f.entries))
	for i, e := range f.entries {
		out[i] = TokenEntry{Token: e.Token, User: UserInfo{Name: e.User.Name, UID: e.User.UID, Groups: slices.Clone(e.User.Groups)}}
	}
	return out
}

// Token returns the first token of user, for writing kubeconfigs.
func (f *TokenFile) Token(user string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, e := range f.entries {
		if e.User.Name == user {
			return e.Token, true
		}
	}
	return "", false
}

// AuthenticateToken returns the user owning token.
func (f *TokenFile) AuthenticateToken(token string) (*UserInfo, bool) {
	if token == "" {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	f.mu.RLock()
	u, ok := f.byHash[h]
	f.mu.RUnlock()
	if !ok {
		return nil, false
	}
	// A copy, so handlers cannot mutate the table.
	return &UserInfo{Name: u.Name, UID: u.UID, Groups: slices.Clone(u.Groups)}, true
}

// AuthenticateRequest implements Authenticator using the bearer token of r.
// A request without a bearer token is (nil, false, nil); a request with an
// unknown token is (nil, false, ErrInvalidToken) so the caller can tell
// "no credentials" from "bad credentials".
func (f *TokenFile) AuthenticateRequest(r *http.Request) (*UserInfo, bool, error) {
	token, ok := BearerToken(r)
	if !ok {
		return nil, false, nil
	}
	u, ok := f.AuthenticateToken(token)
	if !ok {
		return nil, false, ErrInvalidToken
	}
	return u, true, nil
}

func (f *TokenFile) setEntries(entries []TokenEntry) {
	m := indexTokens(entries)
	f.mu.Lock()
	f.entries, f.byHash = entries, m
	f.mu.Unlock()
}

// indexTokens maps each token's hash to its user.
func indexTokens(entries []TokenEntry) map[[sha256.Size]byte]*UserInfo {
	m := make(map[[sha256.Size]byte]*UserInfo, len(entries))
	for i := range entries {
		// Later lines win on a duplicate token, as in Kubernetes.
		m[sha256.Sum256([]byte(entries[i].Token))] = &entries[i].User
	}
	return m
}

// addLocked appends a fresh token for user and returns it. The caller
// holds the file lock.
func (f *TokenFile) addLocked(user string, groups []string) (string, error) {
	if err := validateName("user", user); err != nil {
		return "", fmt.Errorf("auth: token file %s: %w", f.path, err)
	}
	for _, g := range groups {
		if err := validateName("group", g); err != nil {
			return "", fmt.Errorf("auth: token file %s: user %q: %w", f.path, user, err)
		}
		if strings.Contains(g, ",") {
			return "", fmt.Errorf("auth: token file %s: user %q: group %q must not contain a comma", f.path, user, g)
		}
	}
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	f.mu.RLock()
	entries := append(slices.Clone(f.entries), TokenEntry{Token: token, User: UserInfo{Name: user, UID: user, Groups: slices.Clone(groups)}})
	f.mu.RUnlock()
	f.setEntries(entries)
	return token, nil
}

func validateName(what, s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%s name must not be empty", what)
	}
	if strings.ContainsAny(s, "\r\n\"") {
		return fmt.Errorf("%s name %q must not contain quotes or line breaks", what, s)
	}
	return nil
}

// NewToken returns 32 random bytes, hex encoded.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func parseTokens(path string, data []byte) ([]TokenEntry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out []TokenEntry
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("auth: token file %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("auth: token file %s line %d: want token,user,uid[,groups], got %d columns", path, line, len(rec))
		}
		if rec[0] == "" {
			return nil, fmt.Errorf("auth: token file %s line %d: empty token", path, line)
		}
		if rec[1] == "" {
			return nil, fmt.Errorf("auth: token file %s line %d: empty user name", path, line)
		}
		e := TokenEntry{Token: rec[0], User: UserInfo{Name: rec[1], UID: rec[2]}}
		if len(rec) >= 4 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					e.User.Groups = append(e.User.Groups, g)
				}
			}
		}
		out = append(out, e)
	}
}

// save writes the file atomically with mode 0600.
func (f *TokenFile) save() error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	f.mu.RLock()
	for _, e := range f.entries {
		rec := []string{e.Token, e.User.Name, e.User.UID}
		if len(e.User.Groups) > 0 {
			rec = append(rec, strings.Join(e.User.Groups, ","))
		}
		if err := w.Write(rec); err != nil {
			f.mu.RUnlock()
			return fmt.Errorf("auth: encode token file %s: %w", f.path, err)
		}
	}
	f.mu.RUnlock()
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("auth: encode token file %s: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("auth: write token file %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(buf.Bytes())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("auth: write token file %s: %w", f.path, err)
	}
	f.mu.Lock()
	f.sum = sha256.Sum256(buf.Bytes())
	f.mu.Unlock()
	return nil
}

// withFileLock serialises writers of the token file across processes (an
// API server starting while `minik8s agent` adds a node user), so neither
// loses the other's additions. The lock lives in a sibling file because the
// token file itself is replaced by rename.
func withFileLock(path string, fn func() error) error {
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("auth: lock token file %s: %w", path, err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("auth: lock token file %s: %w", path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return fn()
}

func warnIfReadable(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		slog.Warn("token file is readable by other users; tokens are credentials",
			"component", "apiserver", "file", path, "mode", fi.Mode().Perm().String())
	}
}
