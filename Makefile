# Recur: build, install and test.
#
#   make build                      release build: the `recur` command and the C library (static Swift
#                                   runtime: neither needs a Swift toolchain where it runs)
#   make install PREFIX=DIR         DIR/bin/recur, DIR/lib/librecur.so, DIR/include/recur.h,
#                                   DIR/lib/pkgconfig/recur.pc, DIR/share/recur/alice.recur (when present);
#                                   the program and the library are stripped of debug information and
#                                   local symbols (STRIP=0 installs them as built; STRIP=PROGRAM names the
#                                   strip program, default strip)
#   make uninstall PREFIX=DIR
#   make test-c                     install into $(SCRATCH)/prefix and run tests/c/run.sh there
#   make test-python                the Python binding's tests against the same layout, with the project's
#                                   virtual environment .venv (scripts/setup.sh --python makes it from
#                                   $(PYTHON), default python3)
#
# SCRATCH chooses the build folder (default .build): make build SCRATCH=.build-mine

SWIFT   ?= swift
SCRATCH ?= .build
PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?=
STRIP   ?= strip

RELEASE   := $(SCRATCH)/release
SWIFTARGS := -c release --scratch-path $(SCRATCH) -Xswiftc -static-stdlib
VERSION   := $(shell sed -n 's/^\#define RECUR_VERSION_STRING "\(.*\)"/\1/p' include/recur.h)
DEST      := $(DESTDIR)$(abspath $(PREFIX))

.PHONY: build install uninstall test-c test-python

# The library is linked with SONAME librecur.so, the name it is installed under, so programs linked with
# -lrecur record that name, and with a version script that exports only the recur_* functions of
# include/recur.h (the statically linked Swift runtime stays private to it). The two products are built by
# separate invocations so that only the library gets these flags; the compiled modules are shared.
EXPORTS := $(abspath $(SCRATCH))/librecur.exports

build:
	mkdir -p $(SCRATCH)
	printf '{\n  global: recur_*;\n  local: *;\n};\n' >$(EXPORTS)
	$(SWIFT) build $(SWIFTARGS) --product RecurC -Xlinker -soname=librecur.so -Xlinker --version-script=$(EXPORTS)
	$(SWIFT) build $(SWIFTARGS) --product recur

install: build
	install -d $(DEST)/bin $(DEST)/lib/pkgconfig $(DEST)/include
	install -m 755 $(RELEASE)/recur $(DEST)/bin/recur
	install -m 755 $(RELEASE)/libRecurC.so $(DEST)/lib/librecur.so
ifneq ($(STRIP),0)
	$(if $(filter 1,$(STRIP)),strip,$(STRIP)) --strip-unneeded $(DEST)/bin/recur $(DEST)/lib/librecur.so
endif
	install -m 644 include/recur.h $(DEST)/include/recur.h
	printf '%s\n' \
	    'prefix=$(abspath $(PREFIX))' \
	    'exec_prefix=$${prefix}' \
	    'libdir=$${exec_prefix}/lib' \
	    'includedir=$${prefix}/include' \
	    '' \
	    'Name: recur' \
	    'Description: Inference runtime for recurrent neural networks (.recur models)' \
	    'Version: $(VERSION)' \
	    'Libs: -L$${libdir} -lrecur' \
	    'Cflags: -I$${includedir}' >$(DEST)/lib/pkgconfig/recur.pc
	if [ -f models/alice.recur ]; then \
	    install -d $(DEST)/share/recur && install -m 644 models/alice.recur $(DEST)/share/recur/alice.recur; \
	fi

uninstall:
	rm -f $(DEST)/bin/recur $(DEST)/lib/librecur.so $(DEST)/include/recur.h \
	    $(DEST)/lib/pkgconfig/recur.pc $(DEST)/share/recur/alice.recur
	-rmdir $(DEST)/share/recur 2>/dev/null

test-c:
	$(MAKE) install PREFIX=$(SCRATCH)/prefix
	RECUR_STRIPPED=$(if $(filter 0,$(STRIP)),0,1) tests/c/run.sh $(SCRATCH)/prefix

test-python:
	$(MAKE) install PREFIX=$(SCRATCH)/prefix
	$(if $(PYTHON),PYTHON=$(PYTHON)) scripts/setup.sh --python
	cd bindings/python && RECUR_INCLUDE=$(abspath $(SCRATCH)/prefix)/include ../../.venv/bin/python -W ignore \
	    setup.py -q build_ext --inplace --build-temp $(abspath $(SCRATCH))/python-module
	RECUR_STEP_MODULE=required RECUR_PREFIX=$(abspath $(SCRATCH)/prefix) RECUR_LIBRARY=$(abspath $(SCRATCH)/prefix)/lib/librecur.so \
	    RECUR_CLI=$(abspath $(SCRATCH)/prefix)/bin/recur PYTHONPATH=$(CURDIR)/bindings/python \
	    .venv/bin/python -m pytest bindings/python/tests -q
