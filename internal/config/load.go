package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
)

// rawValue is one setting's value as one source gave it, with where it came
// from so an error can point at the flag, the environment variable or the
// line of the config file.
type rawValue struct {
	value string
	where string
}

// source is one layer of configuration: setting name → value.
type source map[string]rawValue

// Load resolves the configuration from defaults, the YAML file named by
// --config / ORVILLE_CONFIG, the environment (read through getenv, so tests
// need not touch the process environment) and args, in increasing precedence.
// args exclude the program name and subcommand. -h / --help returns
// flag.ErrHelp; the caller then prints Usage.
func Load(args []string, getenv func(string) string) (*Config, error) {
	return load(args, getenv, firstHostIPv4)
}

// load is Load with the host-address detection injected for tests.
func load(args []string, getenv func(string) string, detectIPv4 func() (netip.Addr, error)) (*Config, error) {
	table := settings()
	flags, err := parseFlags(table, args)
	if err != nil {
		return nil, err
	}
	env := readEnv(table, getenv)

	var file source
	if path := highest(nameConfig, env, flags); path != "" {
		if file, err = readFile(path, table); err != nil {
			return nil, err
		}
	}
	layers := []source{file, env, flags} // increasing precedence

	var c Config
	var errs []error
	apply := func(s setting) {
		def := s.def
		if c.Dev && s.devDef != "" {
			def = s.devDef
		}
		if err := s.set(&c, def); err != nil {
			// A default that does not parse is a bug in the table, caught by tests.
			errs = append(errs, fmt.Errorf("default of --%s: %w", s.name, err))
		}
		for _, l := range layers {
			if v, ok := l[s.name]; ok {
				if err := s.set(&c, v.value); err != nil {
					errs = append(errs, fmt.Errorf("%s: invalid value %q: %w", v.where, v.value, err))
				}
			}
		}
	}
	// dev chooses the other defaults, whichever source turns it on, so it
	// is resolved before everything else.
	for _, s := range table {
		if s.name == nameDev {
			apply(s)
		}
	}
	for _, s := range table {
		if s.name != nameDev {
			apply(s)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := c.finish(detectIPv4); err != nil {
		return nil, err
	}
	return &c, nil
}

// highest returns the value of a setting from the highest-precedence layer that has it.
func highest(name string, layers ...source) string {
	v := ""
	for _, l := range layers {
		if r, ok := l[name]; ok {
			v = r.value
		}
	}
	return v
}

// readEnv collects the ORVILLE_* variables that are set. An empty variable
// counts as unset, as getenv cannot tell the two apart.
func readEnv(table []setting, getenv func(string) string) source {
	out := source{}
	for _, s := range table {
		name := envName(s.name)
		if v := getenv(name); v != "" {
			out[s.name] = rawValue{value: v, where: name}
		}
	}
	return out
}

// flagValue records a flag's raw string; parsing happens with the other
// sources so every source reports errors the same way.
type flagValue struct{ value string }

func (f *flagValue) String() string     { return f.value }
func (f *flagValue) Set(v string) error { f.value = v; return nil }

// listFlagValue lets a list setting be repeated: "--webhook-url A
// --webhook-url B" is "A,B".
type listFlagValue struct {
	flagValue
	set bool
}

func (f *listFlagValue) Set(v string) error {
	if f.set && f.value != "" && v != "" {
		v = f.value + "," + v
	}
	f.value, f.set = v, true
	return nil
}

// boolFlagValue lets "--dev" stand for "--dev=true".
type boolFlagValue struct{ flagValue }

func (*boolFlagValue) IsBoolFlag() bool { return true }

// parseFlags parses args and returns only the flags that were given
// (FlagSet.Visit), so that defaults never mask the environment or the file.
func parseFlags(table []setting, args []string) (source, error) {
	fs := flag.NewFlagSet("orville", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller prints errors and Usage
	fs.Usage = func() {}
	values := map[string]*flagValue{}
	for _, s := range table {
		if s.arg == "" {
			v := &boolFlagValue{}
			values[s.name] = &v.flagValue
			fs.Var(v, s.name, s.help)
		} else if s.list {
			v := &listFlagValue{}
			values[s.name] = &v.flagValue
			fs.Var(v, s.name, s.help)
		} else {
			v := &flagValue{}
			values[s.name] = v
			fs.Var(v, s.name, s.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are flags such as --max-calls 100)", fs.Arg(0))
	}
	out := source{}
	fs.Visit(func(f *flag.Flag) {
		out[f.Name] = rawValue{value: values[f.Name].value, where: "--" + f.Name}
	})
	return out, nil
}
