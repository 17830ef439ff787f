package sqlcheck

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The rule: the query of a database/sql-style call may be built — by +,
// fmt.Sprint*, or a strings.Builder — only from constants. A query that is
// not built where it is used (a parameter, a field, a prepared statement's
// arguments) is not this check's business: the rule is about the place
// where SQL text meets other text.
//
// Constant is: a Go constant expression (literals, constants of any package
// of the module); a local variable every assignment of which is constant;
// strings.Repeat of a constant (its count only says how often);
// strings.Trim*, fmt.Sprint* of constants; a call of a placeholder helper;
// a constant parameter; or an operand a reviewer has proved safe (sites).
//
// Files are parsed with go/parser and type-checked with go/types to resolve
// names; packages outside the module are not loaded, so their names resolve
// only as far as the import itself.

// queryArg maps each method taking SQL to the position of the query.
var queryArg = map[string]int{
	"ExecContext": 1, "QueryContext": 1, "QueryRowContext": 1, "PrepareContext": 1,
	"Exec": 0, "Query": 0, "QueryRow": 0, "Prepare": 0,
}

// config is what the checker takes as constant beyond the rule's own cases.
// Functions are named by package directory and name: "mysql/tuples".
type config struct {
	// helpers build placeholder lists such as (?, ?), (?, ?). The checker
	// proves that each returns only constant text.
	helpers []string
	// constParams are parameters that hold SQL fragments (table and column
	// names, a statement's head). The checker proves that every call passes
	// a constant for each.
	constParams map[string][]string
	// sites are operands proved safe by hand, with the reason.
	sites map[site]string
}

// site is an operand, as gofmt prints it, in a function of a file.
type site struct{ file, fn, operand string }

// module is this module's configuration: every entry must be needed.
var module = config{
	helpers: []string{"mysql/placeholders", "mysql/tuples", "sqlite/chatScan", "sqlite/indexSearch", "sqlite/matchTerms"},
	constParams: map[string][]string{
		// ApplyCreates' statements name their table, key columns and the
		// counter they advance, and insert takes the INSERT … VALUES
		// before its rows: apply passes literals and messageCols.
		"mysql/lock":      {"table", "cols"},
		"mysql/lockFeeds": {"table", "cols", "lock"},
		"mysql/insert":    {"head"},
		"mysql/advance":   {"table", "column", "cols"},
		// The search queries filter every term on the body column they
		// name: chatScan and indexSearch pass literals.
		"sqlite/matchTerms": {"body"},
	},
	sites: map[site]string{
		{"sqlite/index.go", "Connect", "c.name"}: "ATTACH takes no placeholder for the schema name; attachConnector's name is " +
			"one of the package's literals, store or idx, set where Open builds the connector",
		{"internal/testenv/services.go", "MySQLDatabase", "cfg.DBName"}: "CREATE and DROP DATABASE take no placeholders; " +
			"the name is instachat_test_ and 16 hex digits that the function formats from rand.Uint64, never input",
	},
}

func TestNoSQLBuiltFromInput(t *testing.T) {
	root, modPath := moduleRoot(t)
	c := load(t, root, modPath, module)
	for _, p := range c.run() {
		t.Error(p)
	}
}

// TestCheckerFlagsBadSQL runs the checker on testdata/bad, whose lines that
// must be flagged end with a comment: want "operand".
func TestCheckerFlagsBadSQL(t *testing.T) {
	c := load(t, "testdata/bad", "example.com/bad", config{
		helpers:     []string{"marks", "badMarks"},
		constParams: map[string][]string{"selectFrom": {"table"}, "unused": {"x"}},
		sites: map[site]string{
			{"bad.go", "createDatabase", "name"}: "a reviewer proved it",
			{"bad.go", "nowhere", "x"}:           "stale",
		},
	})
	want := map[string]bool{}
	wantRE := regexp.MustCompile(`// want "([^"]+)"`)
	f, err := os.Open("testdata/bad/bad.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if m := wantRE.FindStringSubmatch(sc.Text()); m != nil {
			want[fmt.Sprintf("bad.go:%d: %s", line, m[1])] = true
		}
	}
	got := map[string]bool{}
	for _, p := range c.run() {
		got[p.key()] = true
	}
	for _, stale := range []string{"unused: no such function", "bad.go:nowhere:x: not needed"} {
		want[stale] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("not flagged: %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("flagged, unexpectedly: %s", k)
		}
	}
}

// moduleRoot returns the directory of the go.mod above the test, and the

// moduleRoot returns the directory of the go.mod above the test, and the
// module path.
func moduleRoot(t *testing.T) (dir, modPath string) {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for line := range strings.Lines(string(b)) {
				if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(p), `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

type pkg struct {
	dir   string // relative to the root, with slashes; "." for the root
	path  string
	files []*ast.File
	types *types.Package
	info  *types.Info
}

type checker struct {
	root  string
	fset  *token.FileSet
	pkgs  map[string]*pkg // by import path
	cfg   config
	used  map[string]bool // config entries that were needed
	found []problem
}

type problem struct {
	pos  token.Position // relative file name
	text string         // the operand, or what is wrong
	why  string
}

func (p problem) key() string {
	if p.pos.Filename == "" {
		return p.text
	}
	return fmt.Sprintf("%s:%d: %s", p.pos.Filename, p.pos.Line, p.text)
}

func (p problem) String() string {
	if p.pos.Filename == "" {
		return p.text
	}
	return fmt.Sprintf("%s: %s: %s", p.pos, p.text, p.why)
}

// load parses every non-test .go file under root, skipping testdata and
// hidden directories as the go tool does, and type-checks the packages.
func load(t *testing.T, root, modPath string, cfg config) *checker {
	c := &checker{root: root, fset: token.NewFileSet(), pkgs: map[string]*pkg{}, cfg: cfg, used: map[string]bool{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(c.fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		rel = filepath.ToSlash(rel)
		importPath := path.Join(modPath, rel)
		if c.pkgs[importPath] == nil {
			c.pkgs[importPath] = &pkg{dir: rel, path: importPath}
		}
		c.pkgs[importPath].files = append(c.pkgs[importPath].files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.pkgs {
		c.typecheck(p)
	}
	return c
}

// Import implements types.Importer for the module's packages; any other
// fails, and go/types goes on with a fake package of that path.
func (c *checker) Import(path string) (*types.Package, error) {
	p := c.pkgs[path]
	if p == nil {
		return nil, fmt.Errorf("%s is not loaded", path)
	}
	c.typecheck(p)
	return p.types, nil
}

func (c *checker) typecheck(p *pkg) {
	if p.info != nil {
		return
	}
	p.info = &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}, Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: c, Error: func(error) {}} // errors from the missing packages
	p.types, _ = conf.Check(p.path, c.fset, p.files, p.info)
}

// scope is where an expression is judged.
type scope struct {
	p    *pkg
	file *ast.File
	fn   *ast.FuncDecl
}

func (sc scope) object(id *ast.Ident) types.Object {
	if o := sc.p.info.Uses[id]; o != nil {
		return o
	}
	return sc.p.info.Defs[id]
}

func (c *checker) report(sc scope, at ast.Node, text, why string) {
	pos := c.fset.Position(at.Pos())
	pos.Filename, _ = filepath.Rel(c.root, pos.Filename)
	pos.Filename = filepath.ToSlash(pos.Filename)
	if sc.fn != nil {
		if reason := c.cfg.sites[site{pos.Filename, sc.fn.Name.Name, text}]; reason != "" {
			c.used["site "+pos.Filename+":"+sc.fn.Name.Name+":"+text] = true
			return
		}
	}
	c.found = append(c.found, problem{pos, text, why})
}

func (c *checker) source(e ast.Node) string {
	var b strings.Builder
	printer.Fprint(&b, c.fset, e)
	return b.String()
}

// run checks every query, then proves the helpers and constant
// parameters, and reports config entries that nothing needed.
func (c *checker) run() []problem {
	for _, k := range sortedKeys(c.pkgs) {
		p := c.pkgs[k]
		for _, f := range p.files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
					c.checkQueries(scope{p, f, fn})
				}
			}
		}
	}
	for _, h := range c.cfg.helpers {
		c.proveHelper(h)
	}
	for _, key := range sortedKeys(c.cfg.constParams) {
		c.proveConstParams(key, c.cfg.constParams[key])
	}
	for s := range c.cfg.sites {
		if !c.used["site "+s.file+":"+s.fn+":"+s.operand] {
			c.found = append(c.found, problem{text: fmt.Sprintf("%s:%s:%s: not needed", s.file, s.fn, s.operand)})
		}
	}
	for _, key := range sortedKeys(c.cfg.constParams) {
		for _, param := range c.cfg.constParams[key] {
			if _, _, fn := c.funcDecl(key); fn != nil && !c.used["param "+key+"."+param] {
				c.found = append(c.found, problem{text: fmt.Sprintf("%s parameter %s: not needed", key, param)})
			}
		}
	}
	for _, h := range c.cfg.helpers {
		if _, _, fn := c.funcDecl(h); fn != nil && !c.used["helper "+h] {
			c.found = append(c.found, problem{text: fmt.Sprintf("helper %s: not needed", h)})
		}
	}
	slices.SortFunc(c.found, func(a, b problem) int { return strings.Compare(a.key(), b.key()) })
	return c.found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkQueries checks the query of every SQL call in fn, closures included.
func (c *checker) checkQueries(sc scope) {
	ast.Inspect(sc.fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		i, ok := queryArg[sel.Sel.Name]
		if !ok || len(call.Args) <= i || !c.built(sc, call.Args[i], map[*types.Var]bool{}) {
			return true
		}
		why := fmt.Sprintf("not a constant, in SQL built for %s at line %d (pass it as a ? argument)", sel.Sel.Name, c.fset.Position(call.Pos()).Line)
		for _, e := range c.unsafe(sc, call.Args[i], map[*types.Var]bool{}) {
			c.report(sc, e, c.source(e), why)
		}
		return true
	})
}

// built reports whether e is SQL text built here, rather than received.
func (c *checker) built(sc scope, e ast.Expr, seen map[*types.Var]bool) bool {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return c.built(sc, e.X, seen)
	case *ast.BinaryExpr:
		return e.Op == token.ADD
	case *ast.CallExpr:
		if strings.HasPrefix(c.stdFunc(sc, e), "fmt.Sprint") {
			return true
		}
		// A function of this module that makes the query text (chatScan,
		// indexSearch) builds it as surely as a + does: it must be a
		// listed helper, proved constant, or it is flagged.
		if fn := c.callee(sc, e); fn != nil && c.funcKey(fn) != "" {
			return true
		}
		_, isBuilder, _ := c.builder(sc, e)
		return isBuilder
	case *ast.Ident:
		if values, ok := c.assignments(sc, e, seen); ok {
			return slices.ContainsFunc(values, func(v ast.Expr) bool { return c.built(sc, v, seen) })
		}
	}
	return false
}

// unsafe returns the operands of e that are not constant.
func (c *checker) unsafe(sc scope, e ast.Expr, seen map[*types.Var]bool) []ast.Expr {
	if tv, ok := sc.p.info.Types[e]; ok && tv.Value != nil {
		return nil // a constant expression
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return c.unsafe(sc, e.X, seen)
	case *ast.BinaryExpr:
		return append(c.unsafe(sc, e.X, seen), c.unsafe(sc, e.Y, seen)...)
	case *ast.Ident:
		if c.constParam(sc, e) {
			return nil
		}
		if values, ok := c.assignments(sc, e, seen); ok {
			var bad []ast.Expr
			for _, v := range values {
				bad = append(bad, c.unsafe(sc, v, seen)...)
			}
			return bad
		}
	case *ast.CallExpr:
		return c.unsafeCall(sc, e, seen)
	}
	return []ast.Expr{e}
}

func (c *checker) unsafeCall(sc scope, call *ast.CallExpr, seen map[*types.Var]bool) []ast.Expr {
	var args []ast.Expr // those that must be constant
	switch c.stdFunc(sc, call) {
	case "strings.Repeat":
		args = call.Args[:1] // the count only says how often
	case "strings.TrimSuffix", "strings.TrimPrefix", "strings.TrimSpace", "fmt.Sprint", "fmt.Sprintf", "strconv.Itoa":
		args = call.Args
	default:
		if name := c.helper(sc, call); name != "" {
			c.used["helper "+name] = true
			return nil
		}
		writes, isBuilder, all := c.builder(sc, call)
		if !isBuilder || !all {
			return []ast.Expr{call}
		}
		args = writes
	}
	var bad []ast.Expr
	for _, a := range args {
		bad = append(bad, c.unsafe(sc, a, seen)...)
	}
	return bad
}

// stdFunc names the function of another package that call calls, as
// "strings.Repeat", or returns "".
func (c *checker) stdFunc(sc scope, call *ast.CallExpr) string {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if x, ok := sel.X.(*ast.Ident); ok {
		if pn, ok := sc.object(x).(*types.PkgName); ok {
			return pn.Imported().Path() + "." + sel.Sel.Name
		}
	}
	return ""
}

// callee returns the package-level function of the module that call calls.
func (c *checker) callee(sc scope, call *ast.CallExpr) *types.Func {
	var id *ast.Ident
	switch fun := call.Fun.(type) {
	case *ast.Ident:
		id = fun
	case *ast.SelectorExpr:
		id = fun.Sel
	default:
		return nil
	}
	fn, ok := sc.object(id).(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Parent() != fn.Pkg().Scope() {
		return nil
	}
	return fn
}

// funcKey is the config name of fn: "mysql/tuples".
func (c *checker) funcKey(fn *types.Func) string {
	if p := c.pkgs[fn.Pkg().Path()]; p != nil {
		return path.Join(p.dir, fn.Name())
	}
	return ""
}

// helper returns the config name of the placeholder helper call calls,
// or "".
func (c *checker) helper(sc scope, call *ast.CallExpr) string {
	if fn := c.callee(sc, call); fn != nil && slices.Contains(c.cfg.helpers, c.funcKey(fn)) {
		return c.funcKey(fn)
	}
	return ""
}

// local returns the variable id names if it is declared in sc.fn's body.
func (c *checker) local(sc scope, id *ast.Ident) *types.Var {
	v, ok := sc.object(id).(*types.Var)
	if !ok || sc.fn == nil || v.Pos() < sc.fn.Body.Pos() || v.Pos() >= sc.fn.Body.End() {
		return nil
	}
	return v
}

// assignments returns every value assigned to the local variable id in
// sc.fn (none for one being judged already), and false if id is not a local
// variable, or gets a value the checker cannot see: as a parameter of a
// closure, from a range, from a call of several results, or through its
// address.
func (c *checker) assignments(sc scope, id *ast.Ident, seen map[*types.Var]bool) ([]ast.Expr, bool) {
	v := c.local(sc, id)
	if v == nil {
		return nil, false
	}
	if seen[v] {
		return nil, true
	}
	seen[v] = true
	var values []ast.Expr
	declared, ok := false, true
	is := func(e ast.Expr) bool { i, isIdent := e.(*ast.Ident); return isIdent && sc.object(i) == v }
	ast.Inspect(sc.fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if !is(l) {
					continue
				}
				declared = declared || n.Tok == token.DEFINE
				switch {
				case n.Tok == token.ADD_ASSIGN:
					values = append(values, n.Rhs[0])
				case (n.Tok == token.DEFINE || n.Tok == token.ASSIGN) && len(n.Lhs) == len(n.Rhs):
					values = append(values, n.Rhs[i])
				default:
					ok = false
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if is(name) {
					declared = true
					if i < len(n.Values) {
						values = append(values, n.Values[i])
					} else if len(n.Values) > 0 {
						ok = false
					}
				}
			}
		case *ast.RangeStmt:
			if n.Key != nil && is(n.Key) || n.Value != nil && is(n.Value) {
				ok = false
			}
		case *ast.UnaryExpr:
			if n.Op == token.AND && is(n.X) {
				ok = false
			}
		}
		return true
	})
	return values, ok && declared
}

// builder reports whether call is the String method of a local
// strings.Builder, and returns what is written to it, or all=false if it is
// written some way the checker cannot see.
func (c *checker) builder(sc scope, call *ast.CallExpr) (writes []ast.Expr, isBuilder, all bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "String" || len(call.Args) != 0 {
		return nil, false, false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return nil, false, false
	}
	v := c.local(sc, x)
	if v == nil {
		return nil, false, false
	}
	// Declared as var b strings.Builder, and every other use of it one of
	// these methods.
	uses := 0
	ast.Inspect(sc.fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ValueSpec:
			if len(n.Names) == 1 && sc.object(n.Names[0]) == v && n.Type != nil {
				if t, ok := n.Type.(*ast.SelectorExpr); ok && t.Sel.Name == "Builder" {
					pn, ok := sc.object(t.X.(*ast.Ident)).(*types.PkgName)
					isBuilder = ok && pn.Imported().Path() == "strings"
				}
			}
		case *ast.Ident:
			if sc.p.info.Uses[n] == v {
				uses++
			}
		case *ast.CallExpr:
			s, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := s.X.(*ast.Ident); ok && sc.p.info.Uses[id] == v {
				switch s.Sel.Name {
				case "WriteString", "WriteByte", "WriteRune":
					writes, uses = append(writes, n.Args...), uses-1
				case "String", "Len", "Grow", "Reset":
					uses--
				}
			}
		}
		return true
	})
	return writes, isBuilder, uses == 0
}

// constParam reports whether id is a parameter of sc.fn that config names
// constant; proveConstParams checks its callers.
func (c *checker) constParam(sc scope, id *ast.Ident) bool {
	v, ok := sc.object(id).(*types.Var)
	if !ok || sc.fn == nil || v.Pos() < sc.fn.Type.Params.Pos() || v.Pos() >= sc.fn.Type.Params.End() {
		return false
	}
	key := path.Join(sc.p.dir, sc.fn.Name.Name)
	if !slices.Contains(c.cfg.constParams[key], id.Name) {
		return false
	}
	c.used["param "+key+"."+id.Name] = true
	return true
}

// funcDecl finds a package-level function by its config name.
func (c *checker) funcDecl(key string) (*pkg, *ast.File, *ast.FuncDecl) {
	dir, name := path.Split(key)
	dir = path.Clean(dir)
	for _, p := range c.pkgs {
		if p.dir != dir {
			continue
		}
		for _, f := range p.files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == name {
					return p, f, fn
				}
			}
		}
	}
	return nil, nil, nil
}

// proveHelper checks that the helper returns only constant text.
func (c *checker) proveHelper(key string) {
	p, f, fn := c.funcDecl(key)
	if fn == nil {
		c.found = append(c.found, problem{text: key + ": no such function"})
		return
	}
	sc := scope{p, f, fn}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		if ret, ok := n.(*ast.ReturnStmt); ok {
			for _, r := range ret.Results {
				for _, e := range c.unsafe(sc, r, map[*types.Var]bool{}) {
					c.report(sc, e, c.source(e), "not a constant, in what placeholder helper "+key+" returns")
				}
			}
		}
		return true
	})
}

// proveConstParams checks that every call of the function passes a constant
// for each of params, and that the function is used only by calling it.
func (c *checker) proveConstParams(key string, params []string) {
	p, _, decl := c.funcDecl(key)
	if decl == nil {
		c.found = append(c.found, problem{text: key + ": no such function"})
		return
	}
	fn := p.info.Defs[decl.Name]
	var index []int
	i := 0
	for _, f := range decl.Type.Params.List {
		for _, n := range f.Names {
			if slices.Contains(params, n.Name) {
				index = append(index, i)
			}
			i++
		}
	}
	// Only the package can call an unexported function; an exported one
	// could be called from anywhere, and is not proved here.
	for _, f := range p.files {
		callees := map[*ast.Ident]bool{}
		for _, d := range f.Decls {
			caller, ok := d.(*ast.FuncDecl)
			if !ok || caller.Body == nil {
				continue
			}
			sc := scope{p, f, caller}
			ast.Inspect(caller.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok && sc.object(id) == fn {
					callees[id] = true
					for _, i := range index {
						for _, e := range c.unsafe(sc, call.Args[i], map[*types.Var]bool{}) {
							c.report(sc, e, c.source(e), "not a constant, passed as SQL to "+key)
						}
					}
				}
				return true
			})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && p.info.Uses[id] == fn && !callees[id] {
				c.report(scope{p: p, file: f}, id, id.Name, "used other than by calling it, so its SQL parameters cannot be checked")
			}
			return true
		})
	}
	if decl.Name.IsExported() {
		c.found = append(c.found, problem{text: key + ": exported, so not every call can be checked"})
	}
}
