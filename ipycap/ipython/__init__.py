"""IPython glue: the ``%%capsule``/``%capsule`` magics and the output filter.  It makes no
security decision of its own: every decision is the engine's."""
