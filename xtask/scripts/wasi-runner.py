#!/usr/bin/env python3
"""Cargo test runner for wasm32-wasip1: runs a libtest binary under Wasmtime.

Used as CARGO_TARGET_WASM32_WASIP1_RUNNER by `cargo xtask test` so that the
pure core's unit tests also run compiled to WebAssembly, the way Envoy runs it.
Usage: wasi-runner.py <module.wasm> [libtest args...]
"""
import sys

from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, WasiConfig


def main() -> int:
    module_path, *args = sys.argv[1:]
    config = Config()
    engine = Engine(config)
    store = Store(engine)
    wasi = WasiConfig()
    wasi.argv = [module_path, *args]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.inherit_env()
    store.set_wasi(wasi)
    linker = Linker(engine)
    linker.define_wasi()
    module = Module.from_file(engine, module_path)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except ExitTrap as exit_trap:
        return exit_trap.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
