//! moat's vDSO: the image (built from `vdso/vdso.c` by build.rs) and its
//! mapping into a new program's address space, one page above the
//! sandbox's time page (kernel/clock.rs), as the image's code expects.

use std::sync::Arc;

use host::memfile::PAGE;

use crate::mm::{page_up, Backing, MemoryManager, VmaName, PROT_EXEC, PROT_READ};
use crate::SysResult;

/// The vDSO, an ELF shared object linked at address 0 with no relocations.
pub static IMAGE: &[u8] = &ALIGNED.0;

/// The image at the alignment its ELF headers need to be read in place.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);
static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so")));

/// Maps the time page (`[vvar]`, read-only, shared) and a private copy of
/// the vDSO right above it (`[vdso]`, read and execute) where mmap would
/// put them; returns the vDSO's address, the program's AT_SYSINFO_EHDR.
pub fn map(mm: &mut MemoryManager, time_page: &Arc<Backing>) -> SysResult<u64> {
    let len = page_up(IMAGE.len() as u64).ok_or(errno!(ENOEXEC))?;
    let at = mm.free_range(PAGE + len)?;
    mm.map(at, PAGE, PROT_READ, true, true, false, Some((time_page.clone(), 0)), VmaName::Vvar)?;
    mm.map(at + PAGE, len, PROT_READ | PROT_EXEC, false, true, false, None, VmaName::Vdso)?;
    mm.write_force(at + PAGE, IMAGE)?;
    Ok(at + PAGE)
}

#[cfg(test)]
mod tests {
    use object::elf;
    use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader, Sym};
    use object::Endianness;

    use super::IMAGE;

    /// What glibc, musl and Go need of a vDSO, and what moat's loader
    /// relies on: one segment at 0 (the time page is the page below it),
    /// nothing to relocate, the clock functions exported as LINUX_2.6.
    #[test]
    fn the_image_is_one_segment_at_zero_with_nothing_to_relocate() {
        let eh = elf::FileHeader64::<Endianness>::parse(IMAGE).unwrap();
        let e = eh.endian().unwrap();
        assert_eq!(eh.e_type(e), elf::ET_DYN);
        assert_eq!(eh.e_machine(e), elf::EM_X86_64);
        let phdrs = eh.program_headers(e, IMAGE).unwrap();
        let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type(e) == elf::PT_LOAD).collect();
        assert_eq!(loads.len(), 1);
        assert_eq!((loads[0].p_vaddr(e), loads[0].p_offset(e)), (0, 0));
        assert_eq!(loads[0].p_flags(e), elf::PF_R | elf::PF_X);
        assert!(loads[0].p_memsz(e) <= IMAGE.len() as u64);
        let sections = eh.sections(e, IMAGE).unwrap();
        for s in sections.iter() {
            assert!(!matches!(s.sh_type(e), elf::SHT_REL | elf::SHT_RELA), "the vDSO has relocations");
        }
        let dynamic = phdrs.iter().find_map(|p| p.dynamic(e, IMAGE).unwrap()).unwrap();
        for d in dynamic {
            let tag = d.d_tag(e) as u32;
            assert!(![elf::DT_REL, elf::DT_RELA, elf::DT_TEXTREL, elf::DT_NEEDED].contains(&tag), "dynamic tag {tag}");
        }
        let syms = sections.symbols(e, IMAGE, elf::SHT_DYNSYM).unwrap();
        let names: Vec<&[u8]> =
            syms.iter().filter(|s| s.st_shndx(e) != 0).map(|s| syms.symbol_name(e, s).unwrap()).collect();
        for want in
            ["__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu", "__vdso_clock_getres"]
        {
            assert!(names.contains(&want.as_bytes()), "{want} is missing from {names:?}");
        }
        let versions = sections.versions(e, IMAGE).unwrap().expect("the vDSO has symbol versions");
        for (i, s) in syms.iter().enumerate().filter(|(_, s)| s.st_shndx(e) != 0) {
            let index = versions.version_index(e, object::SymbolIndex(i));
            let version = versions.version(index).unwrap().expect("every exported name has a version");
            assert_eq!(version.name(), b"LINUX_2.6", "{:?}", syms.symbol_name(e, s));
        }
    }
}
