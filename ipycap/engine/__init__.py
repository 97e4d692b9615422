"""The engine: source in, result out, with only the authority a capsule was granted.

It never imports IPython, and its modules import one another in one direction only:
``errors``, ``rules`` and ``policy`` first; then ``gate`` and ``guard`` (the decisions on
source and attributes); ``libraries`` (the library profiles' decisions); ``tripwire`` (the
audit hook); ``libraries.wrappers`` (what views of granted libraries hand out) and
``stdviews`` (capsule-safe io, pathlib, glob, os.path); ``registry`` and ``context`` (who was
granted what); ``modules`` (module views) and ``membrane`` (proxies); ``codeexec`` and
``stdlib_guards``; ``builtins`` (the capsule's builtins dict); and ``capsule``, which runs code.
"""
