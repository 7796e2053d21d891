"""The server's callbacks, served in the client: tensor hooks and custom Functions' backwards, during a backward."""
from __future__ import annotations

import itertools
import queue
import threading

import grpc

from .engine.function import check_saved
from .errors import from_rpc_error
from .grad_mode import GradMode
from .protos import autograd_pb2 as pb
from .protos.codec import KIND as K
from .tensor import Tensor


class RemovableHandle:
    """What register_hook returns; ``remove()`` unregisters the hook on the server too."""

    def __init__(self, callbacks: Callbacks, hook_id: int) -> None:
        self._callbacks = callbacks
        self.id = hook_id

    def remove(self) -> None:
        self._callbacks.remove_hook(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Callbacks:
    """A session's hooks and custom Function nodes, and the event stream on which the server asks
    for them. A batch that may call back (a backward) is sent by ``serve``, which runs each callback
    as its event arrives and answers it, until the batch's own answer comes."""

    def __init__(self, transport, queue_, recorder) -> None:
        self._transport = transport
        self._queue = queue_
        self._recorder = recorder
        self.hooks: dict[int, object] = {}
        self.functions: dict[int, object] = {}
        self._hook_ids = itertools.count(1)
        self._events: queue.Queue | None = None
        self._event_call = None
        self.closed = False

    @property
    def any(self) -> bool:
        """Whether some hook or Function of the client's may run in a backward."""
        return bool(self.hooks or self.functions)

    # ------------------------------------------------------------ hooks
    def register_hook(self, t: Tensor, fn) -> RemovableHandle:
        self._ensure_events()
        hook_id = next(self._hook_ids)
        self.hooks[hook_id] = fn
        name = getattr(fn, "__name__", type(fn).__name__)  # torch's errors about what it returns quote it
        self._queue.enqueue(K.REGISTER_HOOK, args=(t,), kwargs={"hook": hook_id, "name": str(name)})
        return RemovableHandle(self, hook_id)

    def remove_hook(self, hook_id: int) -> None:
        if self.hooks.pop(hook_id, None) is not None:
            self._queue.enqueue(K.REMOVE_HOOK, kwargs={"hook": hook_id})

    # ------------------------------------------------------------ custom Functions
    def apply_function(self, cls, node, args, kwargs):
        """A custom Function's forward, run here (its ops on the server), connected to a node the
        server keeps: its backward calls back to this client."""
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        node.needs_input_grad = tuple(t and a.requires_grad for a, t in zip(args, is_tensor))
        with GradMode(self._recorder, False):
            outputs = cls.forward(node, *args, **kwargs)
        check_saved(node._to_save, Tensor)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        if not (self._recorder.grad_enabled and any(node.needs_input_grad)):
            # an input returned as is comes back as a new tensor, as in torch, even without a graph
            final = tuple(o.detach() if isinstance(o, Tensor) and id(o) in inputs else o for o in outs)
            return final[0] if single else final
        node._arg_is_tensor = is_tensor
        node._tensor_outputs = tuple(isinstance(o, Tensor) for o in outs)
        tensors = [o for o in outs if isinstance(o, Tensor)]
        alias_ids = tuple(self._recorder.new_id() if id(o) in inputs else 0 for o in tensors)
        self._ensure_events()
        self.functions[node._id] = node
        self._recorder.remember_node(node)
        result = self._queue.command(
            K.FUNCTION, args=(tuple(a if t else None for a, t in zip(args, is_tensor)), tuple(tensors)),
            kwargs={"name": node._name, "non_differentiable": tuple(node._non_differentiable),
                    "materialize_grads": node.materialize_grads,
                    "saved": tuple(t for t in node._to_save if isinstance(t, Tensor))},
            outputs=alias_ids, node=node._id)
        replaced = {}
        for o, alias, m in zip(tensors, alias_ids, result.outputs):
            if alias:
                replaced[id(o)] = self._recorder.from_meta(m)
            else:
                self._recorder.update(o, m)
        final = tuple(replaced.get(id(o), o) for o in outs)
        return final[0] if single else final

    def functions_let_go(self, freed, released) -> None:
        """The server freed these Function nodes' saved tensors, or released the nodes."""
        for node_id in freed:
            node = self.functions.get(node_id)
            if node is not None:
                node._to_save = ()
                node._freed = True
        for node_id in released:
            node = self.functions.pop(node_id, None)
            if node is not None:
                node._to_save = ()
                node._freed = True

    # ------------------------------------------------------------ serving
    def serve(self, batch) -> pb.BatchResult:
        """Send a batch that may call back (backward with hooks) and serve its callbacks in order."""
        done = object()
        future = self._transport.execute_future(batch)
        future.add_done_callback(lambda f: self._events.put(done))
        while True:
            event = self._events.get()
            if event is done:
                return self._transport.result(future)
            if isinstance(event, BaseException):
                raise event
            kind = event.WhichOneof("kind")
            if kind == "hook":
                self._run_hook(event.hook)
            elif kind == "function":
                self._run_function(event.function)

    def _serve_callback(self, call, run) -> None:
        """Answer one of the server's callbacks: ``run(reply)`` fills the answer. It runs in the
        backward's grad mode (the server runs its calls in it too); what it raises goes back to the
        server and is re-raised from backward() with the user's traceback."""
        reply = pb.CallbackReply(call_id=call.call_id)
        recorder = self._recorder
        outer_mode, recorder.grad_enabled = recorder.grad_enabled, call.grad_enabled
        keep = None  # what run() answered with stays referenced until the server has it
        self._queue.in_callback += 1
        try:
            try:
                keep = run(reply)
            except BaseException as e:  # noqa: BLE001  (handed to the server, re-raised from backward)
                self._queue.user_errors.append(e)
                reply.error = f"{type(e).__name__}: {e}"
            finally:
                recorder.grad_enabled = outer_mode
            self._reply(reply)
        finally:
            self._queue.in_callback -= 1
        del keep

    def _run_hook(self, call) -> None:
        def run(reply):
            fn = self.hooks.get(call.hook)
            if fn is None:
                raise RuntimeError(f"hook {call.hook} is not registered in this client")
            result = fn(self._recorder.from_meta(call.grad))
            if result is None:
                reply.result.none = True
            elif isinstance(result, Tensor):
                reply.result.ref = self._queue.ref_of(result)
            else:
                raise TypeError(f"expected Variable, but hook returned '{type(result).__name__}'")  # torch's words
            return result
        self._serve_callback(call, run)

    def _run_function(self, call) -> None:
        """The server's backward reached a custom Function applied here: run its backward."""
        def run(reply):
            node = self.functions.get(call.node)
            if node is None:
                raise RuntimeError(f"function node {call.node} is unknown to this client")
            node._saved_error = call.saved_error or None
            grads = node._backward_inputs(tuple(self._recorder.from_meta(m) if m.id else None for m in call.grads))
            result = node._backward_outputs(node._function.backward(node, *grads))
            items = reply.result.list
            items.SetInParent()
            for g in result:
                item = items.items.add()
                if g is None:
                    item.none = True
                else:
                    item.ref = self._queue.ref_of(g)
            return grads, result
        self._serve_callback(call, run)

    def _reply(self, reply) -> None:
        # what the callback queued (a replacement gradient, say) must exist before the server goes on.
        # Queued commands never call back: a plain Execute, as a nested wait for events would take
        # the events (the end) of the call this callback serves. Releases alone can wait.
        if self._queue.commands:
            try:
                self._queue.execute([])
            except Exception as e:  # noqa: BLE001  (the server must still hear back, or it waits out its deadline)
                self._queue.user_errors.append(e)
                reply.ClearField("result")
                reply.error = f"{type(e).__name__}: {e}"
        self._transport.reply(reply)

    def _ensure_events(self) -> None:
        if self._events is not None:
            return
        self._events = queue.Queue()
        call = self._transport.subscribe(controller=True)
        self._event_call = call
        ready = threading.Event()

        def pump():
            try:
                for event in call:
                    if event.WhichOneof("kind") == "ready":
                        ready.set()
                    else:
                        self._events.put(event)
            except grpc.RpcError as e:
                if not self.closed:
                    self._events.put(from_rpc_error(e, self._transport.address))
            finally:
                ready.set()

        threading.Thread(target=pump, name="remote-autograd-events", daemon=True).start()
        ready.wait(30)
        self._queue.serve = self.serve

    def close(self) -> None:
        self.closed = True
        if self._event_call is not None:
            self._event_call.cancel()

