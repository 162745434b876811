"""llvmlite: initialise, optimise, JIT-compile (MCJIT) and cache object code.

``llvm.initialize()`` is deprecated in current llvmlite (and raises), so only the native
target and asm printer are initialised. Object code is cached on disk, keyed by a hash
of the IR (which is derived from the analysed program), the llvmlite and LLVM versions
and the host CPU, so a repeated run of the same program skips code generation; the IR
is still parsed (cheap) because MCJIT needs a module to look symbols up in.

Cache directory: ``$CXPAR_CACHE_DIR/llvm``, else ``$XDG_CACHE_HOME/cxpar/llvm``, else
``~/.cache/cxpar/llvm``. ``CXPAR_LLVM_CACHE=0`` disables it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["BackendUnavailable", "Jitted", "load_llvmlite", "jit_compile", "cache_dir",
           "verify_ir", "check_installed"]


class BackendUnavailable(Exception):
    """llvmlite cannot be loaded (or cannot JIT) on this platform."""


_STATE: dict[str, Any] = {}

#: CPython / libc functions the dispatch and loop IR call, resolved through ctypes.
_SYMBOLS = ("PyUnicode_AsUTF8AndSize", "PyErr_Clear", "PyLong_AsVoidPtr", "Py_IncRef",
            "PyObject_Vectorcall", "PyFloat_AsDouble", "PyFloat_FromDouble",
            "PyBool_FromLong", "PyLong_AsSsize_t", "PyLong_FromSsize_t", "PyTuple_New",
            "PyTuple_SetItem", "Py_DecRef", "PyErr_BadArgument")


def check_installed() -> None:
    """:class:`BackendUnavailable` unless llvmlite is installed (without importing it:
    a run that never JIT-compiles anything does not pay for the import)."""
    if "llvm" in _STATE:
        return
    from importlib.util import find_spec

    try:
        found = find_spec("llvmlite") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendUnavailable("llvmlite could not be loaded: it is not installed "
                                 "(pip install llvmlite)")


def load_llvmlite() -> ModuleType:
    """``llvmlite.binding``, initialised once; :class:`BackendUnavailable` if it cannot load."""
    llvm = _STATE.get("llvm")
    if llvm is not None:
        return llvm  # type: ignore[no-any-return]
    try:
        import ctypes

        import llvmlite
        import llvmlite.binding as binding

        binding.initialize_native_target()
        binding.initialize_native_asmprinter()
        for name in _SYMBOLS:
            binding.add_symbol(name, ctypes.cast(getattr(ctypes.pythonapi, name),
                                                 ctypes.c_void_p).value)
        libc = ctypes.CDLL(None)
        binding.add_symbol("memcmp", ctypes.cast(libc.memcmp, ctypes.c_void_p).value)
        binding.add_symbol("fmod", ctypes.cast(libc.fmod, ctypes.c_void_p).value)
        binding.add_symbol("cx_py_true", id(True))  # Py_True, for the loops' unboxing
        _target_machine(binding)
    except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
        raise BackendUnavailable(f"llvmlite could not be loaded: {type(exc).__name__}: {exc}") \
            from exc
    _STATE["llvm"] = binding
    _STATE["version"] = f"llvmlite {llvmlite.__version__} llvm " + ".".join(
        str(v) for v in binding.llvm_version_info)
    return binding


def _target_machine(binding: Any) -> Any:
    """A host target machine; the execution engine owns (and frees) the one it is given."""
    target = binding.Target.from_default_triple()
    return target.create_target_machine(cpu=binding.get_host_cpu_name(),
                                        features=binding.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


def cache_dir() -> Path | None:
    """Where object code is cached (None when disabled)."""
    if os.environ.get("CXPAR_LLVM_CACHE", "1") == "0":
        return None
    base = os.environ.get("CXPAR_CACHE_DIR")
    if base:
        return Path(base) / "llvm"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "cxpar" / "llvm"


def verify_ir(ir_text: str) -> None:
    """Parse and verify IR text (raises RuntimeError with LLVM's message if invalid)."""
    llvm = load_llvmlite()
    mod = llvm.parse_assembly(ir_text)
    mod.verify()


@dataclass
class Jitted:
    """A JIT-compiled dispatch module: function and global addresses, timings."""

    engine: Any
    module: Any
    key: str
    cache_hit: bool
    compile_s: float
    phases: dict[str, float] = field(default_factory=dict)

    def address(self, name: str) -> int:
        addr = int(self.engine.get_function_address(name))
        if not addr:
            raise KeyError(name)
        return addr

    def global_address(self, name: str) -> int:
        return int(self.engine.get_global_value_address(name))


def cache_key(ir_text: str) -> str:
    load_llvmlite()
    llvm = _STATE["llvm"]
    h = hashlib.sha256()
    for part in (_STATE["version"], llvm.get_process_triple(), llvm.get_host_cpu_name(),
                 llvm.get_host_cpu_features().flatten(), ir_text):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def jit_compile(ir_text: str, *, use_cache: bool = True, opt: int = 2) -> Jitted:
    """Parse, verify, optimise and JIT ``ir_text``; reuse cached object code if present.

    ``compile_s`` excludes importing and initialising llvmlite (once per process).
    """
    llvm = load_llvmlite()
    t0 = time.perf_counter()
    tm = _target_machine(llvm)
    key = cache_key(ir_text)
    directory = cache_dir() if use_cache else None
    obj_path = directory / f"{key}.o" if directory is not None else None
    cached: bytes | None = None
    if obj_path is not None and obj_path.is_file():
        try:
            cached = obj_path.read_bytes()
        except OSError:
            cached = None
    phases: dict[str, float] = {}
    mod = llvm.parse_assembly(ir_text)
    mod.verify()
    phases["parse"] = time.perf_counter() - t0
    if cached is None and opt > 0:
        t = time.perf_counter()
        pto = llvm.create_pipeline_tuning_options(speed_level=opt)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        phases["optimise"] = time.perf_counter() - t
    engine = llvm.create_mcjit_compiler(mod, tm)

    def notify(_module: Any, buffer: bytes) -> None:
        if obj_path is None:
            return
        try:
            obj_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = obj_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(buffer)
            os.replace(tmp, obj_path)
        except OSError:
            pass  # a read-only cache only costs a recompilation

    def getbuffer(_module: Any) -> bytes | None:
        return cached

    engine.set_object_cache(notify, getbuffer)
    t = time.perf_counter()
    engine.finalize_object()
    phases["codegen" if cached is None else "load"] = time.perf_counter() - t
    return Jitted(engine, mod, key, cached is not None, time.perf_counter() - t0, phases)
