"""The proposal kinds of spec §4, one module each; ``registry`` finds every module here
that defines ``KIND``. A new kind is one module here and one test."""
