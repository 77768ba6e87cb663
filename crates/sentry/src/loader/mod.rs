//! Program loading for execve: static, static-PIE and dynamic ELF
//! executables (with their PT_INTERP), `#!` scripts, and the initial stack.

use std::sync::Arc;

use abi::{AsBytes, Errno};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use crate::auth::capability;
use crate::auth::Creds;
use crate::kernel::{CurrentTask, Kernel};
use crate::mm::{
    page_down, page_up, Backing, MemoryManager, PageSource, VmaName, FROZEN_MAX, PROT_EXEC, PROT_READ, PROT_WRITE,
    STACK_SIZE,
};
use crate::vfs::permission::{self, MAY_EXEC};
use crate::vfs::{Dentry, FileSource, FileType, Follow, InodeRef, OpenFile, Stat};
use crate::SysResult;

pub mod vdso;

const MAX_SCRIPT_DEPTH: u32 = 4;
const PIE_BASE: u64 = 0x5555_5555_4000;
const MAX_ARG_BYTES: usize = 2 << 20;

/// A program image ready to run.
#[derive(Debug)]
pub struct Image {
    pub mm: MemoryManager,
    pub entry: u64,
    pub sp: u64,
    /// The resolved path of the executable (for /proc/self/exe).
    pub exe: Vec<u8>,
    /// The file name as given, for comm.
    pub comm: Vec<u8>,
    /// The credentials the program runs with (set-ID bits and capabilities
    /// applied), for execve to install.
    pub creds: Creds,
}

struct Opened {
    dentry: Arc<Dentry>,
    file: Arc<OpenFile>,
    size: u64,
    stat: Stat,
}

fn open_exec(cur: &CurrentTask, path: &[u8]) -> SysResult<Opened> {
    let fs = cur.tg().fs.lock().unwrap().clone();
    let who = cur.creds();
    let d = cur.k.vfs.walk_as(&who, &fs.root, &fs.cwd, path, Follow::Yes)?;
    let st = d.inode.stat()?;
    if st.file_type() != FileType::Regular || st.mode & 0o111 == 0 {
        return Err(errno!(EACCES));
    }
    if d.inode.enforces_mode_bits() {
        permission::check(&who, &st, MAY_EXEC)?;
    }
    let ops = d.inode.clone().open(0)?;
    Ok(Opened { file: OpenFile::new(ops, Some(d.clone()), 0), dentry: d, size: st.size, stat: st })
}

fn read_at(f: &Opened, off: u64, buf: &mut [u8]) -> SysResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.file.ops.read(&f.file, &mut &mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Loads `path` with `argv`/`envp` into a fresh address space.
pub fn load(cur: &CurrentTask, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<Image> {
    load_depth(cur, path, argv, envp, 0)
}

fn load_depth(
    cur: &CurrentTask,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    depth: u32,
) -> SysResult<Image> {
    let f = open_exec(cur, path)?;
    let mut head = [0u8; 256];
    let n = read_at(&f, 0, &mut head)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        if depth >= MAX_SCRIPT_DEPTH {
            return Err(errno!(ELOOP));
        }
        let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end];
        let line: Vec<u8> = line.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let interp_end = line.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(line.len());
        let interp = line[..interp_end].to_vec();
        if interp.is_empty() {
            return Err(errno!(ENOEXEC));
        }
        let arg: Vec<u8> = line[interp_end..].iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let arg: Vec<u8> = {
            let mut a = arg;
            while a.last().is_some_and(|b| *b == b' ' || *b == b'\t' || *b == b'\r') {
                a.pop();
            }
            a
        };
        let mut new_argv = vec![interp.clone()];
        if !arg.is_empty() {
            new_argv.push(arg);
        }
        new_argv.push(path.to_vec());
        if !argv.is_empty() {
            argv.remove(0);
        }
        new_argv.extend(argv);
        let mut img = load_depth(cur, &interp, new_argv, envp, depth + 1)?;
        img.comm = basename(path);
        return Ok(img);
    }
    load_elf(cur, f, path, argv, envp)
}

fn basename(p: &[u8]) -> Vec<u8> {
    let b = p.rsplit(|&c| c == b'/').next().unwrap_or(p);
    b[..b.len().min(15)].to_vec()
}

struct Loaded {
    bias: u64,
    entry: u64,
    phdr: u64,
    phnum: u64,
    end: u64,
    interp: Option<Vec<u8>>,
}

fn load_elf(cur: &CurrentTask, f: Opened, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<Image> {
    let mut mm = MemoryManager::new(cur.k.alloc.clone(), cur.k.platform.layout());
    let main = map_elf(cur, &mut mm, &f, true)?;
    let mut interp_base = 0;
    let mut entry = main.entry;
    if let Some(ipath) = &main.interp {
        let fi = open_exec(cur, ipath).map_err(|e| if e == Errno::EACCES { errno!(ELIBBAD) } else { e })?;
        let li = map_elf(cur, &mut mm, &fi, false)?;
        if li.interp.is_some() {
            return Err(errno!(ELIBBAD));
        }
        interp_base = li.bias;
        entry = li.entry;
    }
    mm.init_brk(page_up(main.end).ok_or(errno!(ENOEXEC))?)?;
    let stack_top = mm.layout().stack_top();
    let (sbase, _) =
        mm.map(stack_top - STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE, false, true, false, None, VmaName::Stack)?;
    debug_assert_eq!(sbase, stack_top - STACK_SIZE);
    let vdso = vdso::map(&mut mm, &cur.k.clock.page)?;
    let exe = f.dentry.path();
    // The executable's set-ID bits count, not a script's (this is the
    // interpreter when `path` was a script), as on Linux.
    let (creds, secure) = capability::exec_creds(&cur.creds(), f.stat.mode, f.stat.uid, f.stat.gid);
    let sp = build_stack(&mut mm, path, &argv, &envp, &main, interp_base, vdso, &creds, secure)?;
    Ok(Image { mm, entry, sp, exe, comm: basename(path), creds })
}

fn map_elf(cur: &CurrentTask, mm: &mut MemoryManager, f: &Opened, main: bool) -> SysResult<Loaded> {
    let mut hdr = vec![0u8; 64];
    if read_at(f, 0, &mut hdr)? < 64 {
        return Err(errno!(ENOEXEC));
    }
    let eh = elf::FileHeader64::<Endianness>::parse(&hdr[..]).map_err(|_| errno!(ENOEXEC))?;
    let endian = eh.endian().map_err(|_| errno!(ENOEXEC))?;
    if !eh.is_class_64() || eh.e_machine(endian) != elf::EM_X86_64 {
        return Err(errno!(ENOEXEC));
    }
    let etype = eh.e_type(endian);
    if etype != elf::ET_EXEC && etype != elf::ET_DYN {
        return Err(errno!(ENOEXEC));
    }
    let phoff = eh.e_phoff(endian);
    let phnum = eh.e_phnum(endian) as u64;
    if eh.e_phentsize(endian) as usize != std::mem::size_of::<elf::ProgramHeader64<Endianness>>()
        || phnum == 0
        || phnum > 128
    {
        return Err(errno!(ENOEXEC));
    }
    let phsize = phnum * 56;
    if phoff.checked_add(phsize).is_none_or(|e| e > f.size) {
        return Err(errno!(ENOEXEC));
    }
    let mut phbuf = vec![0u8; phsize as usize];
    if read_at(f, phoff, &mut phbuf)? != phbuf.len() {
        return Err(errno!(ENOEXEC));
    }
    let phdrs: &[elf::ProgramHeader64<Endianness>] =
        object::pod::slice_from_all_bytes(&phbuf).map_err(|_| errno!(ENOEXEC))?;

    let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type(endian) == elf::PT_LOAD).collect();
    if loads.is_empty() {
        return Err(errno!(ENOEXEC));
    }
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for p in &loads {
        let (va, memsz, filesz, off) = (p.p_vaddr(endian), p.p_memsz(endian), p.p_filesz(endian), p.p_offset(endian));
        let end = va.checked_add(memsz).ok_or(errno!(ENOEXEC))?;
        if filesz > memsz || off.checked_add(filesz).is_none_or(|e| e > f.size) || (va % 4096) != (off % 4096) {
            return Err(errno!(ENOEXEC));
        }
        lo = lo.min(page_down(va));
        hi = hi.max(end);
    }
    let hi = page_up(hi).ok_or(errno!(ENOEXEC))?;
    let span = hi - lo;
    if span > (1 << 36) {
        return Err(errno!(ENOMEM));
    }
    let bias = if etype == elf::ET_DYN {
        if main {
            PIE_BASE - lo
        } else {
            let (addr, _) = mm.map(0, span, 0, false, false, false, None, VmaName::Anon)?;
            mm.unmap(addr, span)?;
            addr - lo
        }
    } else {
        0
    };
    if lo.checked_add(bias).is_none_or(|s| s < 0x1000)
        || hi.checked_add(bias).is_none_or(|e| e > mm.layout().stack_top() - STACK_SIZE)
    {
        return Err(errno!(ENOEXEC));
    }
    let backing = mm.alloc_backing(span)?;
    let st = f.dentry.inode.stat()?;
    let path = String::from_utf8_lossy(&f.dentry.path()).into_owned();
    for p in &loads {
        let (va, memsz, filesz, off) = (p.p_vaddr(endian), p.p_memsz(endian), p.p_filesz(endian), p.p_offset(endian));
        let flags = p.p_flags(endian);
        let mut prot = 0;
        if flags & elf::PF_R != 0 {
            prot |= PROT_READ;
        }
        if flags & elf::PF_W != 0 {
            prot |= PROT_WRITE;
        }
        if flags & elf::PF_X != 0 {
            prot |= PROT_EXEC;
        }
        let start = page_down(va);
        let end = page_up(va + memsz).ok_or(errno!(ENOEXEC))?;
        let name = VmaName::File { path: path.clone(), dev: st.dev, ino: st.ino, offset: page_down(off) };
        // A segment nobody writes shows the file's pages, as Linux's does:
        // the sandbox's one copy of them, if the file cannot change.
        if prot & PROT_WRITE == 0 && memsz == filesz {
            if let Some(pages) = frozen_pages(&cur.k, &f.dentry.inode, page_down(off), end - start, FROZEN_MAX) {
                mm.map(start + bias, end - start, prot, false, true, false, Some((pages, page_down(off))), name)?;
                continue;
            }
        }
        mm.map(start + bias, end - start, prot, false, true, false, Some((backing.clone(), start - lo)), name)?;
        // The file's page from its start, as Linux maps it: the bytes before
        // the segment in its first page are the file's too (the end of the
        // segment before it, which may have been mapped from elsewhere).
        let head = if filesz > 0 { va - start } else { 0 };
        let mut data = vec![0u8; (head + filesz) as usize];
        if read_at(f, off - head, &mut data)? != data.len() {
            return Err(errno!(ENOEXEC));
        }
        mm.write_force(start + bias, &data)?;
    }
    let mut interp = None;
    let mut phdr_addr = 0;
    for p in phdrs {
        match p.p_type(endian) {
            elf::PT_INTERP => {
                let len = p.p_filesz(endian).min(4096) as usize;
                let mut b = vec![0u8; len];
                read_at(f, p.p_offset(endian), &mut b)?;
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                b.truncate(end);
                if b.is_empty() {
                    return Err(errno!(ENOEXEC));
                }
                interp = Some(b);
            }
            elf::PT_PHDR => phdr_addr = p.p_vaddr(endian) + bias,
            _ => {}
        }
    }
    if phdr_addr == 0 {
        // The headers lie inside the first segment that covers their file offset.
        for p in &loads {
            let (off, filesz) = (p.p_offset(endian), p.p_filesz(endian));
            if phoff >= off && phoff + phsize <= off + filesz {
                phdr_addr = p.p_vaddr(endian) + (phoff - off) + bias;
            }
        }
    }
    Ok(Loaded { bias, entry: eh.e_entry(endian) + bias, phdr: phdr_addr, phnum, end: hi + bias, interp })
}

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;
const AT_MINSIGSTKSZ: u64 = 51;

#[allow(clippy::too_many_arguments)]
fn build_stack(
    mm: &mut MemoryManager,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    main: &Loaded,
    interp_base: u64,
    vdso: u64,
    creds: &Creds,
    secure: bool,
) -> SysResult<u64> {
    let total: usize = argv.iter().chain(envp.iter()).map(|s| s.len() + 1).sum();
    if total > MAX_ARG_BYTES {
        return Err(errno!(E2BIG));
    }
    let mut sp = mm.layout().stack_top();
    fn push_at(sp: &mut u64, mm: &mut MemoryManager, bytes: &[u8]) -> SysResult<u64> {
        *sp -= bytes.len() as u64;
        mm.write(*sp, bytes)?;
        Ok(*sp)
    }
    macro_rules! push {
        ($mm:expr, $b:expr) => {
            push_at(&mut sp, $mm, $b)
        };
    }
    let mut z = execfn.to_vec();
    z.push(0);
    let execfn_addr = push!(mm, &z)?;
    let mut env_addrs = Vec::new();
    let env_end = sp;
    for e in envp.iter().rev() {
        let mut z = e.clone();
        z.push(0);
        env_addrs.push(push!(mm, &z)?);
    }
    env_addrs.reverse();
    let env_start = sp;
    let arg_end = sp;
    let mut arg_addrs = Vec::new();
    for a in argv.iter().rev() {
        let mut z = a.clone();
        z.push(0);
        arg_addrs.push(push!(mm, &z)?);
    }
    arg_addrs.reverse();
    let arg_start = sp;
    let platform = push!(mm, b"x86_64\0")?;
    let mut rnd = [0u8; 16];
    host::sys::getrandom(&mut rnd).map_err(|_| errno!(EIO))?;
    let random = push!(mm, &rnd)?;
    sp &= !15;

    let auxv: Vec<(u64, u64)> = vec![
        (AT_PHDR, main.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, main.phnum),
        (AT_PAGESZ, 4096),
        (AT_BASE, interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, main.entry),
        (AT_UID, u64::from(creds.uid)),
        (AT_EUID, u64::from(creds.euid)),
        (AT_GID, u64::from(creds.gid)),
        (AT_EGID, u64::from(creds.egid)),
        (AT_SECURE, u64::from(secure)),
        (AT_RANDOM, random),
        (AT_HWCAP, host::sys::auxval(AT_HWCAP)),
        (AT_HWCAP2, host::sys::auxval(AT_HWCAP2)),
        (AT_CLKTCK, 100),
        (AT_PLATFORM, platform),
        (AT_EXECFN, execfn_addr),
        (AT_MINSIGSTKSZ, host::sys::auxval(AT_MINSIGSTKSZ).max(2048)),
        (AT_SYSINFO_EHDR, vdso),
        (AT_NULL, 0),
    ];
    let mut words: Vec<u64> = vec![argv.len() as u64];
    words.extend(&arg_addrs);
    words.push(0);
    words.extend(&env_addrs);
    words.push(0);
    for (k, v) in &auxv {
        words.push(*k);
        words.push(*v);
    }
    if words.len() % 2 == 1 {
        sp -= 8;
    }
    sp -= (words.len() * 8) as u64;
    mm.write(sp, words.as_bytes())?;
    mm.arg_range = (arg_start, arg_end);
    mm.env_range = (env_start, env_end);
    mm.auxv = auxv;
    Ok(sp)
}

/// The sandbox's one copy of `inode`'s bytes, if the sandbox cannot change
/// them, the file is at most `max` bytes long and `[off, off + len)` ends
/// at most `mm::frozen::TAIL` past its last page.
pub fn frozen_pages(k: &Kernel, inode: &InodeRef, off: u64, len: u64, max: u64) -> Option<Arc<Backing>> {
    let (key, lower) = inode.frozen()?;
    if key.size > max || off.checked_add(len)? > page_up(key.size)? + crate::mm::frozen::TAIL {
        return None;
    }
    let open =
        || -> SysResult<Box<dyn PageSource>> { Ok(Box::new(FileSource(OpenFile::new(lower.open(0)?, None, 0)))) };
    k.frozen.get(&k.alloc, key, open).ok()
}
