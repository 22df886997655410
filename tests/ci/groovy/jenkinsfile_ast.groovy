// Parses Groovy files to the syntax tree (phase CONVERSION, as Jenkins' CPS
// parser does first) and prints, as JSON, for each file:
//   stages:   every stage('...') in source order, with its parent stage, the
//             directives written directly in it (agent, when, input, options,
//             steps, stages, post), its agent ("none", a label, or null), the
//             names called anywhere inside it, the option names of its own
//             options { }, and the text of every sh step directly in it;
//   pipelineOptions, pipelineAgent: the top-level options { } names and agent;
//   shScripts: every constant sh script in the file (steps and helpers);
//   withEnv:   every constant item of a withEnv([...]) list;
//   gstrings:  the text of every interpolated string ("...${x}...").
// A syntax error exits non-zero with the compiler's message.
//
// Usage: groovy jenkinsfile_ast.groovy FILE...

import groovy.json.JsonOutput
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.ArgumentListExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.GStringExpression
import org.codehaus.groovy.ast.expr.ListExpression
import org.codehaus.groovy.ast.expr.MapExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.TupleExpression
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases

class Calls {
    static List args(MethodCallExpression call) {
        def a = call.arguments
        return (a instanceof TupleExpression) ? a.expressions : []
    }

    static ClosureExpression closure(MethodCallExpression call) {
        def list = args(call)
        def last = list ? list[-1] : null
        return last instanceof ClosureExpression ? last : null
    }

    // The script of sh '...' or sh(script: '...', ...), when it is a constant.
    static String shScript(MethodCallExpression call) {
        for (arg in args(call)) {
            if (arg instanceof ConstantExpression && arg.value instanceof String) { return arg.value }
            if (arg instanceof MapExpression) {
                def entry = arg.mapEntryExpressions.find { it.keyExpression.text == 'script' }
                if (entry?.valueExpression instanceof ConstantExpression) { return entry.valueExpression.value }
            }
        }
        return null
    }
}

class CallNames extends CodeVisitorSupport {
    List<String> names = []
    void visitMethodCallExpression(MethodCallExpression call) {
        names << call.methodAsString
        super.visitMethodCallExpression(call)
    }
}

class Everything extends CodeVisitorSupport {
    List<String> gstrings = []
    List<String> shScripts = []
    List<String> withEnv = []
    void visitGStringExpression(GStringExpression expression) {
        gstrings << expression.verbatimText
        super.visitGStringExpression(expression)
    }
    void visitMethodCallExpression(MethodCallExpression call) {
        if (call.methodAsString == 'sh') {
            def script = Calls.shScript(call)
            if (script != null) { shScripts << script }
        }
        if (call.methodAsString == 'withEnv') {
            Calls.args(call).findAll { it instanceof ListExpression }.each { list ->
                list.expressions.each { item ->
                    withEnv << (item instanceof ConstantExpression ? item.value : item.text)
                }
            }
        }
        super.visitMethodCallExpression(call)
    }
}

class Stages extends CodeVisitorSupport {
    List<Map> stages = []
    List<String> stack = []
    List<String> pipelineOptions = []
    String pipelineAgent = null
    int depth = 0
    static final List<String> DIRECTIVES = ['agent', 'when', 'input', 'options', 'steps', 'stages', 'post',
                                            'environment']

    static String agentOf(MethodCallExpression call) {
        def list = Calls.args(call)
        if (list && list[0] instanceof org.codehaus.groovy.ast.expr.VariableExpression) { return list[0].name }
        def body = Calls.closure(call)
        def label = null
        body?.code?.visit(new CodeVisitorSupport() {
            void visitMethodCallExpression(MethodCallExpression inner) {
                if (inner.methodAsString == 'label') { label = Calls.args(inner)[0]?.text }
                super.visitMethodCallExpression(inner)
            }
        })
        return label != null ? "label:" + label : "other"
    }

    void visitMethodCallExpression(MethodCallExpression call) {
        def name = call.methodAsString
        def list = Calls.args(call)
        if (name == 'stage' && list && list[0] instanceof ConstantExpression) {
            def stageName = list[0].value
            def body = Calls.closure(call)
            def calls = new CallNames()
            body?.code?.visit(calls)
            def directives = []
            def options = new CallNames()
            def sh = []
            String agent = null
            // Directives: the calls directly in the stage's closure.
            body?.code?.statements?.each { st ->
                def expr = st.hasProperty('expression') ? st.expression : null
                if (expr instanceof MethodCallExpression && expr.methodAsString in DIRECTIVES) {
                    directives << expr.methodAsString
                    if (expr.methodAsString == 'agent') { agent = agentOf(expr) }
                    if (expr.methodAsString == 'options') { Calls.closure(expr)?.code?.visit(options) }
                }
            }
            // sh steps of this stage, not of the stages nested in it.
            body?.code?.visit(new CodeVisitorSupport() {
                void visitMethodCallExpression(MethodCallExpression inner) {
                    if (inner.methodAsString == 'stage') { return }
                    if (inner.methodAsString == 'sh') {
                        def script = Calls.shScript(inner)
                        if (script != null) { sh << script }
                    }
                    super.visitMethodCallExpression(inner)
                }
            })
            stages << [name: stageName, parent: stack ? stack[-1] : null, directives: directives,
                       agent: agent, calls: calls.names.unique().sort(),
                       options: options.names.unique().sort(), sh: sh, line: call.lineNumber]
            stack.push(stageName)
            super.visitMethodCallExpression(call)
            stack.pop()
            return
        }
        if (depth == 1 && name == 'options') {
            def names = new CallNames()
            Calls.closure(call)?.code?.visit(names)
            pipelineOptions.addAll(names.names)
        }
        if (depth == 1 && name == 'agent' && !stack) {
            pipelineAgent = agentOf(call)
        }
        if (name == 'pipeline') { depth++ }
        super.visitMethodCallExpression(call)
        if (name == 'pipeline') { depth-- }
    }
}

def result = [:]
args.each { path ->
    def unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(path))
    unit.compile(Phases.CONVERSION)
    def stages = new Stages()
    def everything = new Everything()
    unit.AST.modules.each { module ->
        module.statementBlock.visit(stages)
        module.statementBlock.visit(everything)
        module.classes.each { cls ->
            cls.methods.findAll { it.name != 'run' }.each { m -> m.code?.visit(everything) }
        }
    }
    result[path] = [stages: stages.stages, pipelineOptions: stages.pipelineOptions.unique().sort(),
                    pipelineAgent: stages.pipelineAgent, shScripts: everything.shScripts,
                    withEnv: everything.withEnv, gstrings: everything.gstrings]
}
println JsonOutput.toJson(result)
