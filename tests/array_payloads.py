"""Payloads of tests/test_array_protocols.py: ways capsule code could make an object answer
``__array_interface__`` with an address (kept apart so a plain process can run them without
importing ipycap)."""

N = 16
PAYLOADS = {
    "class-attribute": "class A:\n    __array_interface__ = IFACE\nr = np.array(A())",
    "property": "class A:\n    @property\n    def __array_interface__(self):\n"
    "        return IFACE\nr = np.array(A())",
    "inherited": "class A:\n    __array_interface__ = IFACE\nclass B(A):\n    pass\n"
    "r = np.array(B())",
    "instance-dict": "class A:\n    pass\na = A()\na.__dict__['__array_interface__'] = IFACE\n"
    "r = np.array(a)",
    "setattr": "class A:\n    pass\na = A()\nsetattr(a, '__array_interface__', IFACE)\n"
    "r = np.array(a)",
    "getattr": "class A:\n    def __getattr__(self, n):\n"
    "        if n == '__array_interface__':\n            return IFACE\n"
    "        raise AttributeError(n)\nr = np.array(A())",
    "getattribute": "class A:\n    def __getattribute__(self, n):\n"
    "        if n == '__array_interface__':\n            return IFACE\n"
    "        return object.__getattribute__(self, n)\nr = np.array(A())",
    "class-object": "class M(type):\n    __array_interface__ = IFACE\n"
    "class A(metaclass=M):\n    pass\nr = np.array(A)",
    "class-object-set": "class A:\n    pass\nA.__array_interface__ = IFACE\nr = np.array(A)",
    "getattr-set-later": "class A:\n    pass\n"
    "A.__getattr__ = lambda self, n: IFACE if n == '__array_interface__' else getattr(0, n)\n"
    "r = np.array(A())",
    "type-call": "A = type('A', (), {'__array_interface__': IFACE})\nr = np.array(A())",
    "real-type": "T = (1).__class__.__class__\nA = T('A', (), {'__array_interface__': IFACE})\n"
    "r = np.array(A())",
    "metaclass-call": "class M(type):\n    pass\nA = M('A', (), {'__array_interface__': IFACE})\n"
    "r = np.array(A())",
    "enum-functional": "import enum\nE = enum.Enum('E', {'__array_interface__': IFACE})\n"
    "r = np.array(E)",
    "function-dict": "def f():\n    pass\nf.__dict__['__array_interface__'] = IFACE\n"
    "r = np.array(f)",
    "function-vars": "def f():\n    pass\nvars(f)['__array_interface__'] = IFACE\nr = np.array(f)",
    "bound-method": "class A:\n    def m(self):\n        pass\n"
    "A.m.__dict__['__array_interface__'] = IFACE\nr = np.array(A().m)",
    "simple-namespace": "import sys\nNS = type(sys.implementation)\n"
    "r = np.array(NS(__array_interface__=IFACE))",
    "argparse-namespace": "import argparse\nr = np.array(argparse.Namespace(__array_interface__=IFACE))",
    "optparse-values": "import optparse\nr = np.array(optparse.Values({'__array_interface__': IFACE}))",
    "mock-configured": "import unittest.mock\nr = np.array(unittest.mock.Mock(__array_interface__=IFACE))",
    "module-subclass-getattr": "import sys\nclass M(type(sys)):\n    pass\nm = M('m')\n"
    "vars(m)['__getattr__'] = lambda n: IFACE if n == '__array_interface__' else getattr(0, n)\nr = np.array(m)",
    "nested-in-list": "class A:\n    __array_interface__ = IFACE\nr = np.array([A()])",
    "ndarray-operand": f"class A:\n    __array_interface__ = IFACE\n"
    f"r = np.zeros({N}, dtype=np.uint8) + A()",
    "ufunc-argument": "class A:\n    __array_interface__ = IFACE\nr = np.add(A(), 0)",
    "setitem-into-own-buffer": f"class A:\n    __array_interface__ = IFACE\n"
    f"r = np.zeros({N}, dtype=np.uint8)\nr[...] = A()",
}


def source_for(name, address):
    iface = f"{{'typestr': '|u1', 'shape': ({N},), 'data': ({address}, True), 'version': 3}}"
    body = PAYLOADS[name]
    return f"import numpy as np\nIFACE = {iface}\n{body}\nr.tobytes()"


#: Payloads that need another grant besides numpy.
EXTRA_IMPORTS = {
    "argparse-namespace": "argparse",
    "optparse-values": "optparse",
    "mock-configured": "unittest.mock",
}
